//! What nodes say to each other on Redis: a MessagePack header, then the raw payload.
//!
//! `u32` big-endian header length, the header (MessagePack with field names, so that a
//! newer node can add fields that an older one ignores during a rolling upgrade), then
//! the payload bytes of a broadcast message, untouched. The layout is in
//! `docs/DESIGN.md`, section "Scale-out".

use bytes::Bytes;
use network_core::{ConnectionId, Message, NodeId, Room, Target, Text};
use serde::{Deserialize, Serialize};

/// The header format this node writes and reads.
const VERSION: u8 = 1;

/// Who sent a packet and where it stands in the sender's sequence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    /// Format version.
    pub(crate) v: u8,
    /// The sender's node number.
    pub(crate) n: u16,
    /// The sender's incarnation: random per start, so a restarted node is a new sender.
    pub(crate) i: u64,
    /// The sender's sequence number of packets on the shared channel (0 elsewhere).
    pub(crate) s: u64,
    /// The only node meant to read it (layout `Single`), if any.
    #[serde(default)]
    pub(crate) to: Option<u16>,
    /// What it says.
    pub(crate) b: Body,
}

/// The kinds of packets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Body {
    /// Deliver the payload to the local members of a target.
    Broadcast {
        rooms: Vec<String>,
        except: Vec<u64>,
        except_rooms: Vec<String>,
        /// A binary frame (else text).
        binary: bool,
    },
    /// The sender (re)joined: every node answers with a `Heartbeat` to it alone, so that
    /// it learns who is there without waiting for their next beat.
    Hello { timeout_ms: u64 },
    /// The sender is alive; it is dead if silent for `timeout_ms` (its own
    /// `heartbeat_timeout`, so nodes with different settings judge each other right).
    Heartbeat { timeout_ms: u64 },
    /// The sender leaves the cluster cleanly.
    Bye,
    /// A router's payload for its peers subscribed to `topic` on other nodes.
    Topic { topic: String },
    /// A question; answer with `Reply { id }` to the sender's channel.
    Request { id: u64, op: Op },
    /// The answer to request `id`.
    Reply { id: u64, answer: Answer },
}

/// What a request asks of the nodes that own the connections.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    Members { room: String },
    RoomsOf { id: u64 },
    Join { id: u64, room: String },
    Leave { id: u64, room: String },
    LeaveAll { id: u64 },
}

/// An answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Ids(Vec<u64>),
    Rooms(Vec<String>),
    Done,
}

/// A packet could not be read: a node of another version, or something else writing to
/// our channels. Logged and dropped; never fatal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PacketError {
    #[error("packet shorter than its header")]
    Truncated,
    #[error("header is not MessagePack of the expected shape")]
    Header(#[from] rmp_serde::decode::Error),
    #[error("header version {0} is not {VERSION}")]
    Version(u8),
    #[error("text payload is not UTF-8")]
    Text,
}

impl Header {
    pub(crate) fn new(node: NodeId, incarnation: u64, body: Body) -> Self {
        Self { v: VERSION, n: node.as_u16(), i: incarnation, s: 0, to: None, b: body }
    }
}

/// Writes `header` and `payload` as one packet.
pub(crate) fn encode(header: &Header, payload: &[u8]) -> Vec<u8> {
    // Our own headers always serialise: plain fields, no maps with odd keys.
    let head = rmp_serde::to_vec_named(header).unwrap_or_default();
    let mut packet = Vec::with_capacity(4 + head.len() + payload.len());
    packet.extend_from_slice(&(head.len() as u32).to_be_bytes());
    packet.extend_from_slice(&head);
    packet.extend_from_slice(payload);
    packet
}

/// Reads a packet's header and the offset of its payload.
pub(crate) fn decode(packet: &[u8]) -> Result<(Header, usize), PacketError> {
    let (len, rest) = packet.split_first_chunk::<4>().ok_or(PacketError::Truncated)?;
    let len = u32::from_be_bytes(*len) as usize;
    let head = rest.get(..len).ok_or(PacketError::Truncated)?;
    let header: Header = rmp_serde::from_slice(head)?;
    if header.v != VERSION {
        return Err(PacketError::Version(header.v));
    }
    Ok((header, 4 + len))
}

/// The header body of a broadcast to `target` of `message`.
pub(crate) fn broadcast_body(target: &Target, message: &Message) -> Body {
    Body::Broadcast {
        rooms: target.rooms.iter().map(|room| room.to_string()).collect(),
        except: target.except.iter().map(|id| id.as_u64()).collect(),
        except_rooms: target.except_rooms.iter().map(|room| room.to_string()).collect(),
        binary: !message.is_text(),
    }
}

/// The target and message of a received broadcast; `payload` is shared, not copied.
pub(crate) fn broadcast_parts(
    rooms: Vec<String>,
    except: Vec<u64>,
    except_rooms: Vec<String>,
    binary: bool,
    payload: Bytes,
) -> Result<(Target, Message), PacketError> {
    let mut target = Target::rooms(rooms.into_iter().map(Room::from));
    target.except = except.into_iter().map(ConnectionId::from_u64).collect();
    target.except_rooms = except_rooms.into_iter().map(Room::from).collect();
    let message = if binary {
        Message::Binary(payload)
    } else {
        Message::Text(Text::from_utf8(payload).map_err(|_| PacketError::Text)?)
    };
    Ok((target, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_round_trips_with_its_payload_untouched() {
        let target = Target::room("a").except(ConnectionId::from_u64(9)).except_room("b");
        let message = Message::from("{\"x\":1}");
        let mut header = Header::new(NodeId::new(3), 77, broadcast_body(&target, &message));
        header.s = 5;
        let packet = encode(&header, message.payload());
        let (read, offset) = decode(&packet).unwrap();
        assert_eq!((read.n, read.i, read.s, read.to), (3, 77, 5, None));
        let Body::Broadcast { rooms, except, except_rooms, binary } = read.b else {
            panic!("not a broadcast")
        };
        let payload = Bytes::copy_from_slice(&packet[offset..]);
        let (target, message) = broadcast_parts(rooms, except, except_rooms, binary, payload).unwrap();
        assert_eq!(message.as_text(), Some("{\"x\":1}"));
        assert_eq!(target.rooms, vec![Room::from("a")]);
        assert!(target.except.contains(&ConnectionId::from_u64(9)));
        assert_eq!(target.except_rooms, vec![Room::from("b")]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for packet in [&b""[..], b"\0\0\0\x09abc", b"\0\0\0\x01\xc1", b"\xff\xff\xff\xff"] {
            assert!(decode(packet).is_err(), "{packet:?}");
        }
        let header = Header::new(
            NodeId::new(1),
            1,
            Body::Broadcast { rooms: vec![], except: vec![], except_rooms: vec![], binary: false },
        );
        let packet = encode(&header, b"\xff\xfe");
        let (read, offset) = decode(&packet).unwrap();
        let Body::Broadcast { rooms, except, except_rooms, binary } = read.b else {
            panic!("not a broadcast")
        };
        let payload = Bytes::copy_from_slice(&packet[offset..]);
        assert!(matches!(
            broadcast_parts(rooms, except, except_rooms, binary, payload),
            Err(PacketError::Text)
        ));
    }
}
