//! The adapter interface and its provider-generic entry points, so one MCP handler and one
//! executor serve all five CLIs.
//!
//! Owns: the [`ProviderRequest`] trait every typed request implements, [`AnyRequest`]
//! (deserialise by provider key, then validate/build without knowing which CLI), the JSON
//! Schema per provider, and [`new_parser`].
//! Not here: the per-CLI rules (one module each) and anything that touches the world.

use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Provider;
use super::claude::{self, ClaudeRequest};
use super::codex::{self, CodexRequest};
use super::gemini::{self, GeminiRequest};
use super::grok::{self, GrokRequest};
use super::invocation::{BuildContext, Invocation};
use super::progress::StreamParser;
use super::request::{CommonRef, Limits, ValidationError, Warning};
use super::vibe::{self, VibeRequest};

/// A provider's typed request: deserialisable with unknown fields rejected, with a JSON
/// Schema whose descriptions come from the field docs, validated and built purely.
pub trait ProviderRequest: Serialize + DeserializeOwned + JsonSchema + Send + Sync {
    /// The provider this request is for.
    const PROVIDER: Provider;

    /// The common parameters, provider aliases merged (claude `continueSession` counts as
    /// `resumeLatest`).
    fn common(&self) -> CommonRef<'_>;

    /// Every check that needs only the request (quality.md "Bad input"), and the warnings a
    /// run would carry. `build` runs the same checks; this lets admission reject bad input
    /// before resolving sessions or models.
    fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError>;

    /// The exact run (providers.md). Pure: everything else comes from `ctx`.
    ///
    /// Not checked here (the caller must, before calling): that `workingDir`, `addDir` and
    /// `images` exist, that a `gw-` session id exists and belongs to this CLI, that a gemini
    /// resume runs in the session's recorded cwd, worktree preconditions, and model alias
    /// resolution (pass the result in `ctx.model`).
    fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError>;
}

/// A request for any provider: what one generic MCP handler holds after deserialising the
/// arguments of `<provider>_request`.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRequest {
    Claude(ClaudeRequest),
    Codex(CodexRequest),
    Gemini(GeminiRequest),
    Grok(GrokRequest),
    Mistral(VibeRequest),
}

/// Calls the same method on whichever typed request is inside.
macro_rules! each {
    ($self:expr, $r:ident => $body:expr) => {
        match $self {
            AnyRequest::Claude($r) => $body,
            AnyRequest::Codex($r) => $body,
            AnyRequest::Gemini($r) => $body,
            AnyRequest::Grok($r) => $body,
            AnyRequest::Mistral($r) => $body,
        }
    };
}

impl AnyRequest {
    /// Deserialises the arguments of `<provider>_request`. Unknown fields, wrong types and
    /// unknown enum values are errors whose message names the field or value.
    pub fn from_value(provider: Provider, args: Value) -> Result<Self, serde_json::Error> {
        Ok(match provider {
            Provider::Claude => AnyRequest::Claude(serde_json::from_value(args)?),
            Provider::Codex => AnyRequest::Codex(serde_json::from_value(args)?),
            Provider::Gemini => AnyRequest::Gemini(serde_json::from_value(args)?),
            Provider::Grok => AnyRequest::Grok(serde_json::from_value(args)?),
            Provider::Mistral => AnyRequest::Mistral(serde_json::from_value(args)?),
        })
    }

    pub fn provider(&self) -> Provider {
        match self {
            AnyRequest::Claude(_) => Provider::Claude,
            AnyRequest::Codex(_) => Provider::Codex,
            AnyRequest::Gemini(_) => Provider::Gemini,
            AnyRequest::Grok(_) => Provider::Grok,
            AnyRequest::Mistral(_) => Provider::Mistral,
        }
    }

    /// The common parameters, provider aliases merged.
    pub fn common(&self) -> CommonRef<'_> {
        each!(self, r => r.common())
    }

    /// See [`ProviderRequest::validate`].
    pub fn validate(&self, limits: Limits) -> Result<Vec<Warning>, ValidationError> {
        each!(self, r => r.validate(limits))
    }

    /// See [`ProviderRequest::build`].
    pub fn build(&self, ctx: &BuildContext) -> Result<Invocation, ValidationError> {
        each!(self, r => r.build(ctx))
    }

    /// The request as JSON (for dedup keys and the flight recorder).
    pub fn to_value(&self) -> Value {
        each!(self, r => serde_json::to_value(r).unwrap_or(Value::Null))
    }
}

/// The input JSON Schema of `<provider>_request` (descriptions from the field docs,
/// `additionalProperties: false`).
pub fn request_schema(provider: Provider) -> Schema {
    match provider {
        Provider::Claude => schemars::schema_for!(ClaudeRequest),
        Provider::Codex => schemars::schema_for!(CodexRequest),
        Provider::Gemini => schemars::schema_for!(GeminiRequest),
        Provider::Grok => schemars::schema_for!(GrokRequest),
        Provider::Mistral => schemars::schema_for!(VibeRequest),
    }
}

/// A fresh parser for one run of `provider`'s CLI.
pub fn new_parser(provider: Provider) -> Box<dyn StreamParser> {
    match provider {
        Provider::Claude => Box::new(claude::parser()),
        Provider::Codex => Box::new(codex::parser()),
        Provider::Gemini => Box::new(gemini::parser()),
        Provider::Grok => Box::new(grok::parser()),
        Provider::Mistral => Box::new(vibe::parser()),
    }
}
