//! Shaping tool results: success with `structuredContent`, and errors a person can act on.
//!
//! Every failure a caller can fix is an ordinary tool result with `isError: true` (never a
//! JSON-RPC error, which MCP clients render opaquely): a text block `<message>`, a blank
//! line, `Fix: <remediation>`, and, on tools without an output schema, the structured
//! error of mcp-surface.md. Tools that declare an output schema leave `structuredContent`
//! off their errors: some MCP clients validate `structuredContent` against the output
//! schema even on errors and would reject the whole call.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use crate::error::ErrorCategory;

/// A failed tool call, before it is shaped into a result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    pub category: ErrorCategory,
    pub message: String,
    pub remediation: String,
    /// Extra `structuredContent` fields of request tools (`cli`, `correlationId`,
    /// `exitCode`, `jobId`, `sessionId`).
    pub details: Map<String, Value>,
}

impl ToolError {
    pub fn new(
        category: ErrorCategory,
        message: impl Into<String>,
        remediation: impl Into<String>,
    ) -> Self {
        ToolError {
            category,
            message: message.into(),
            remediation: remediation.into(),
            details: Map::new(),
        }
    }

    /// A caller mistake: the message names the field and the rule.
    pub fn invalid_input(message: impl Into<String>, remediation: impl Into<String>) -> Self {
        Self::new(ErrorCategory::InvalidInput, message, remediation)
    }

    /// A gateway fault; the caller may retry. The cause is logged by the caller.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            ErrorCategory::Internal,
            message,
            "This is a gateway fault, not a problem with the request: retry, and if it \
             persists run `llm-cli-gateway doctor` and check the server's stderr log.",
        )
    }

    /// The text block: message, blank line, `Fix:` line.
    pub fn text(&self) -> String {
        format!("{}\n\nFix: {}", self.message, self.remediation)
    }

    /// The structured error of mcp-surface.md.
    pub fn structured(&self) -> Value {
        let mut object = Map::new();
        object.insert("errorCategory".into(), json!(self.category.as_str()));
        object.insert("message".into(), json!(self.message));
        object.insert("remediation".into(), json!(self.remediation));
        object.insert("retryable".into(), self.category.retryable().to_json());
        for (key, value) in &self.details {
            object.insert(key.clone(), value.clone());
        }
        Value::Object(object)
    }

    /// The tool result; `with_structured` is false for tools that declare an output schema.
    pub fn into_result(self, with_structured: bool) -> CallToolResult {
        let mut result = CallToolResult::error(vec![ContentBlock::text(self.text())]);
        if with_structured {
            result.structured_content = Some(self.structured());
        }
        result
    }
}

/// A successful result: the structured value, and its compact JSON as the text block for
/// clients that only read text.
pub fn structured_success(value: Value) -> CallToolResult {
    let text = value.to_string();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_has_message_blank_line_and_fix() {
        let error = ToolError::invalid_input(
            "Unknown gateway session \"gw-x\" (sessionId)",
            "List them with session_list.",
        );
        assert_eq!(
            error.text(),
            "Unknown gateway session \"gw-x\" (sessionId)\n\nFix: List them with session_list."
        );
        let structured = error.structured();
        assert_eq!(structured["errorCategory"], "invalid_input");
        assert_eq!(structured["retryable"], false);
        let result = error.clone().into_result(false);
        assert_eq!(result.is_error, Some(true));
        assert!(result.structured_content.is_none());
        assert!(error.into_result(true).structured_content.is_some());
    }
}
