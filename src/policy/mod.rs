//! Gateway policy applied around a request (policy.md): the `mcp_managed` approval decision
//! ([`approval`]), the review-integrity warnings ([`integrity`]), and cache awareness
//! ([`cache`]: statistics, savings estimates from the bundled [`prices`] table, TTL
//! warnings).
//!
//! Owns: the pure rules (scoring, thresholds, the bypass rule, the pinned claude flags of an
//! approved run, the review-context and tool-suppression detectors, cache figures) and the
//! one async step that records an approval decision. Not here: where in admission these run
//! (the `jobs::admission` hooks), SQL (`store`), MCP shaping of results (`mcp`).

pub mod approval;
pub mod cache;
pub mod integrity;
pub mod prices;

use crate::providers::AnyRequest;
use crate::providers::request::AssembledPrompt;

/// The prompt the CLI would receive: `prompt`, or `promptParts` assembled.
pub fn request_prompt(request: &AnyRequest) -> String {
    let common = request.common();
    match (common.prompt, common.prompt_parts) {
        (Some(prompt), _) => prompt.to_string(),
        (None, Some(parts)) => AssembledPrompt::from_parts(parts).text,
        (None, None) => String::new(),
    }
}
