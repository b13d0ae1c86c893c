use super::*;

fn agreement(server: u8, client: u8) -> Agreement {
    Agreement { server_window_bits: server, client_window_bits: client }
}

#[test]
fn the_offers_of_browsers_and_autobahn_are_accepted() {
    // Chromium and Firefox, Node ws, and the offers of Autobahn's cases 13.*.
    assert_eq!(accept_offer(["permessage-deflate; client_max_window_bits"]), Some(agreement(15, 15)));
    assert_eq!(accept_offer(["permessage-deflate"]), Some(agreement(15, 15)));
    assert_eq!(
        accept_offer(["permessage-deflate; client_no_context_takeover; client_max_window_bits"]),
        Some(agreement(15, 15))
    );
    assert_eq!(
        accept_offer(["permessage-deflate; server_max_window_bits=9; client_max_window_bits"]),
        Some(agreement(9, 15))
    );
    assert_eq!(
        accept_offer(["permessage-deflate; server_no_context_takeover; server_max_window_bits=\"10\""]),
        Some(agreement(10, 15))
    );
    assert_eq!(accept_offer([CLIENT_OFFER]), Some(agreement(15, 15)));
}

#[test]
fn the_answer_always_turns_context_takeover_off() {
    assert_eq!(
        agreement(15, 15).response(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    assert_eq!(
        agreement(9, 15).response(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9"
    );
}

#[test]
fn invalid_offers_are_declined_and_the_next_one_taken() {
    for offer in [
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; client_max_window_bits=+9",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; unknown_parameter",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "x-webkit-deflate-frame",
        "permessage-deflate; =9",
        "",
    ] {
        assert_eq!(accept_offer([offer]), None, "{offer}");
    }
    // Offers are tried in order, across the header's values and its lines.
    assert_eq!(
        accept_offer([
            "permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=12"
        ]),
        Some(agreement(12, 15))
    );
    assert_eq!(accept_offer(["foo; bar=\"a,b\"", "permessage-deflate"]), Some(agreement(15, 15)));
    assert_eq!(accept_offer(["foo; bar=\"unterminated, permessage-deflate"]), None);
}

#[test]
fn the_client_reads_what_the_server_agreed() {
    let ours = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    assert_eq!(read_response([ours]), Ok(Some(agreement(15, 15))));
    assert_eq!(
        read_response([
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9; server_max_window_bits=10"
        ]),
        Ok(Some(agreement(10, 9)))
    );
    assert_eq!(read_response([]), Ok(None));
}

#[test]
fn the_client_refuses_an_answer_the_rfc_forbids() {
    assert_eq!(read_response(["permessage-deflate"]), Err(NegotiationError::ContextTakeover));
    assert!(matches!(
        read_response(["permessage-deflate; server_no_context_takeover; client_max_window_bits"]),
        Err(NegotiationError::InvalidParameter(_))
    ));
    assert!(matches!(
        read_response(["permessage-deflate; server_no_context_takeover; server_no_context_takeover"]),
        Err(NegotiationError::InvalidParameter(_))
    ));
    assert!(matches!(
        read_response(["permessage-deflate; server_no_context_takeover; mystery"]),
        Err(NegotiationError::InvalidParameter(_))
    ));
    assert!(matches!(read_response(["x-other"]), Err(NegotiationError::NotOffered(_))));
    assert!(matches!(
        read_response([
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover"
        ]),
        Err(NegotiationError::NotOffered(_))
    ));
    assert_eq!(read_response(["permessage-deflate; ="]), Err(NegotiationError::Malformed));
}

fn json(len: usize) -> Vec<u8> {
    let mut text = String::from("[");
    let mut n = 0u64;
    while text.len() < len {
        n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        text.push_str(&format!(
            r#"{{"id":{},"user":"user-{}","text":"hello there","online":true}},"#,
            n >> 40,
            n % 97
        ));
    }
    text.truncate(len);
    text.into_bytes()
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn inflate_all(compressed: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    inflate(compressed, max, |_| true)
}

#[test]
fn messages_round_trip_at_every_window() {
    for len in [1, 100, 300, 1024, 40_000, 200_000] {
        let payload = json(len);
        for bits in MIN_WINDOW_BITS..=MAX_WINDOW_BITS {
            let compressed = compress(&payload, bits).unwrap_or_default();
            if len >= 300 {
                assert!(
                    compressed.len() < payload.len(),
                    "{len} bytes of JSON did not shrink at {bits} bits"
                );
            }
            assert!(!compressed.ends_with(&TAIL), "the tail is removed");
            assert_eq!(
                inflate_all(&compressed, len).as_deref(),
                Ok(&payload[..]),
                "{len} bytes, {bits} bits"
            );
        }
    }
}

#[test]
fn half_compressible_payloads_round_trip() {
    // Random bytes of 16 values compress to about 60 %: more than the first output buffer
    // of an earlier version (half the payload), whose flush then lost its final block.
    for len in [4096, 65_536, 131_072] {
        let payload: Vec<u8> = noise(len, 11).into_iter().map(|byte| b'a' + byte % 16).collect();
        for bits in [9, 15] {
            let compressed = compress(&payload, bits).unwrap_or_default();
            assert!(compressed.len() > len / 2, "{} of {len}", compressed.len());
            assert_eq!(
                inflate_all(&compressed, len).as_deref(),
                Ok(&payload[..]),
                "{len} bytes, {bits} bits"
            );
        }
    }
}

#[test]
fn json_shrinks_several_times() {
    let payload = json(1024);
    let compressed = compress(&payload, MAX_WINDOW_BITS).unwrap_or_default();
    assert!(compressed.len() * 3 < payload.len(), "{} of {}", compressed.len(), payload.len());
}

#[test]
fn incompressible_payloads_grow_by_a_few_bytes() {
    let payload = noise(200_000, 7);
    let compressed = compress(&payload, MAX_WINDOW_BITS).unwrap_or_default();
    // Stored blocks: about 0.1 % more.
    assert!(
        compressed.len() <= payload.len() + payload.len() / 1000 + 32,
        "{} for {}",
        compressed.len(),
        payload.len()
    );
    assert_eq!(inflate_all(&compressed, payload.len()), Ok(payload));
}

#[test]
fn a_small_window_keeps_matches_within_it() {
    // 1000 random bytes repeated: the only matches are 1000 bytes back, beyond a 512-byte
    // window, so at 9 bits nothing may be matched and the payload does not shrink.
    let block = noise(1000, 3);
    let payload = [&block[..], &block[..], &block[..], &block[..]].concat();
    let size = |bits| compress(&payload, bits).unwrap_or_default().len();
    assert!(size(15) < 1200, "{}", size(15));
    assert!(size(9) >= payload.len(), "{}", size(9));
    // Runs of 2048 bytes: within each, the second copy matches the first.
    assert!(size(11) < payload.len() * 3 / 4, "a 2048-byte window reaches 1000 bytes back");
}

#[test]
fn a_zip_bomb_stops_at_the_maximum() {
    let bomb = compress(&vec![0u8; 16 << 20], MAX_WINDOW_BITS).unwrap_or_default();
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let mut charged = 0;
    let result = inflate(&bomb, 1 << 20, |bytes| {
        charged += bytes;
        true
    });
    assert_eq!(result, Err(InflateError::TooBig { max: 1 << 20 }));
    assert!(charged <= (1 << 20) + 1, "inflated {charged} bytes before stopping");
    // Exactly the maximum is allowed.
    let exact = compress(&vec![0u8; 1000], MAX_WINDOW_BITS).unwrap_or_default();
    assert_eq!(inflate_all(&exact, 1000).map(|out| out.len()), Ok(1000));
    assert_eq!(inflate_all(&exact, 999), Err(InflateError::TooBig { max: 999 }));
}

#[test]
fn the_budget_can_refuse_inflated_bytes() {
    let compressed = compress(&json(300_000), MAX_WINDOW_BITS).unwrap_or_default();
    let mut allowed = 100_000usize;
    let result = inflate(&compressed, 1 << 20, |bytes| match allowed.checked_sub(bytes) {
        Some(left) => {
            allowed = left;
            true
        }
        None => false,
    });
    assert_eq!(result, Err(InflateError::Refused));
}

#[test]
fn corrupt_data_is_refused_and_the_next_message_inflates() {
    // A block of the reserved type 3.
    assert_eq!(inflate_all(&[0x07, 0x00], 1000), Err(InflateError::Corrupt));
    let payload = json(2000);
    let compressed = compress(&payload, MAX_WINDOW_BITS).unwrap_or_default();
    assert_eq!(inflate_all(&compressed, 2000).as_deref(), Ok(&payload[..]));
}

#[test]
fn a_final_block_ends_the_message() {
    // A sender may end with a final block (BFINAL set); what follows is ignored.
    let mut compressor = new_compressor();
    let mut out = vec![0u8; 256];
    let result = miniz_oxide::deflate::stream::deflate(
        &mut compressor,
        b"hello hello hello",
        &mut out,
        MZFlush::Finish,
    );
    out.truncate(result.bytes_written);
    assert_eq!(inflate_all(&out, 100).as_deref(), Ok(&b"hello hello hello"[..]));
}
