//! Gateway policies that sit beside the request pipeline: cache awareness (statistics,
//! savings estimates, TTL warnings) and the bundled price table they use.
//!
//! Not here: running requests (`jobs`), SQL (`store`), MCP shaping (`mcp`).

pub mod cache;
pub mod prices;
