//! What the server and the client share of the WebSocket protocol.
//!
//! - [`frame`]: RFC 6455 frames, the incremental parser both ends read with (generalised
//!   by the [`Role`](frame::Role) that reads) and the frame encoders;
//! - [`deflate`]: permessage-deflate (RFC 7692), the negotiation of its parameters in the
//!   upgrade's `Sec-WebSocket-Extensions` header, and the compression and bounded
//!   decompression of one message;
//! - [`handshake`]: the `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` of the upgrade.
//!
//! # Design
//! Both ends negotiate *no context takeover* in both directions, so a message is
//! compressed and decompressed on its own: no compression state lives in a connection
//! (Node `ws` keeps a zlib context of tens of kilobytes per connection for this), one
//! compressor and one inflater per thread serve every connection, and a broadcast can be
//! compressed once and the same bytes sent to every member. The price is a worse ratio for
//! small messages, which cannot refer to the ones before; the threshold below which
//! messages go uncompressed is the sender's choice. docs/DESIGN.md, "permessage-deflate",
//! gives the measurements and the options rejected.

pub mod deflate;
pub mod frame;
pub mod handshake;
