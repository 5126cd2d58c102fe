//! The adapter interface and its provider-generic entry points, so one MCP handler and one
//! executor serve all five CLIs.
//!
//! Owns: the [`ProviderRequest`] trait every typed request implements, [`AnyRequest`]
//! (deserialise by provider key, then validate/build without knowing which CLI), the JSON
//! Schema per provider, and [`new_parser`].
//! Not here: the per-CLI rules (one module each) and anything that touches the world.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Provider;
use super::invocation::{BuildContext, Invocation};
use super::request::{CommonRef, Limits, ValidationError, Warning};

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
