//! Gateway policy applied to a request before it runs (policy.md): the `mcp_managed`
//! approval decision ([`approval`]) and the review-integrity warnings ([`integrity`]).
//!
//! Owns: the pure rules (scoring, thresholds, the bypass rule, the pinned claude flags of an
//! approved run, the review-context and tool-suppression detectors) and the one async step
//! that records a decision in `approvals`. Not here: where in admission these run (the
//! `jobs::admission` hook), the store's tables, MCP shaping of results.

pub mod approval;
pub mod integrity;

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
