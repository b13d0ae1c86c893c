//! `bench deflate`: what compressing and inflating one message costs, by size, with the
//! codec the server and the client use (`ws_protocol::deflate`, miniz_oxide at its fastest
//! level, no context takeover). The figures behind `Compression::min_size`'s default
//! (docs/DESIGN.md, "permessage-deflate").
//!
//! The payloads are the fan-out's JSON rows (`bench load --payload-size`), so the ratios are
//! those of the fan-out rows of `bench run`. Each size is timed over about 20 MB of input
//! (at least 200 messages), in this process, on one thread.

use std::time::Instant;

use ws_protocol::deflate::{MAX_WINDOW_BITS, compress, inflate};

use crate::load::broadcast_frame;
use crate::{Args, BoxError};

/// The sizes measured, in bytes.
const SIZES: [usize; 6] = [128, 256, 512, 1024, 4096, 16 * 1024];

pub(crate) fn main(args: &Args) -> Result<(), BoxError> {
    let budget: usize = args.num_or("bytes", 20_000_000)?;
    println!("| payload | compressed | ratio | compress | inflate | compress MB/s |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for size in SIZES {
        let messages: Vec<Vec<u8>> = (0..64).map(|seq| broadcast_frame(size, seq)).collect();
        let rounds = (budget / size).max(200);
        let started = Instant::now();
        let mut compressed_bytes = 0;
        for round in 0..rounds {
            let message = &messages[round % messages.len()];
            compressed_bytes += compress(message, MAX_WINDOW_BITS).ok_or("compression failed")?.len();
        }
        let compress_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let compressed: Vec<Vec<u8>> =
            messages.iter().map(|m| compress(m, MAX_WINDOW_BITS).unwrap_or_default()).collect();
        let started = Instant::now();
        for round in 0..rounds {
            let inflated = inflate(&compressed[round % compressed.len()], size, |_| true)?;
            std::hint::black_box(inflated);
        }
        let inflate_us = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let average = compressed_bytes as f64 / rounds as f64;
        println!(
            "| {size} B | {average:.0} B | {:.1}x | {compress_us:.1} us | {inflate_us:.1} us | {:.0} |",
            size as f64 / average,
            size as f64 / compress_us
        );
    }
    Ok(())
}
