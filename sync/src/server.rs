//! The server side, one module per role: [`routes`] (path patterns with models and CRUD
//! handlers), [`config`] (the routes and bounds, and `attach`), [`pipeline`] (the router:
//! frames decoded, then handled one at a time per connection), [`push`] (the handle that
//! pushes to subscribers) and [`state`] (the subscriptions they share).

mod config;
mod pipeline;
mod push;
mod routes;
mod state;

pub use config::{SetupError, SyncConfig};
pub use push::{PushError, SyncHandle};
pub use routes::{Access, Model, ModelContext, ModelRoom, Params, Request, Route};
