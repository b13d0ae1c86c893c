//! The server side, one module per role: [`config`] (the options and `attach`),
//! [`router`] (the peers' requests), [`state`] (who has which view open), [`flusher`] (the
//! diffs sent every interval), [`presence`] (the handle for server code) and [`cluster`]
//! (the replication between nodes).

mod cluster;
mod config;
mod flusher;
mod presence;
mod router;
mod state;

pub use config::{SetupError, ViewsConfig};
pub use presence::{PatternError, Presence};
