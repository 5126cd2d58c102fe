//! The model registry: which model ids and aliases each CLI knows, and where each came from.
//!
//! Three layers, later wins: a small bundled table, `[models.<cli>]` in config.toml, and
//! the `<KEY>_DEFAULT_MODEL` / `<KEY>_MODEL_ALIASES` environment variables (already merged
//! into the config by `config::load`, each tagged with its source). The bundled table holds
//! only names that stay valid: claude's own family aliases, which the claude CLI resolves to
//! the newest model of that family. Nothing is invented for CLIs whose defaults move; with
//! no configured default those CLIs pick their own model.
//!
//! This module answers `list_models` and resolves a request's `model` parameter; it does no
//! I/O and never asks a CLI.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{Config, ModelSource, ModelsConfig};
use crate::providers::Provider;

/// Where a model name or alias came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Bundled,
    Config,
    Env,
}

impl From<ModelSource> for Origin {
    fn from(source: ModelSource) -> Self {
        match source {
            ModelSource::Config => Origin::Config,
            ModelSource::Env => Origin::Env,
        }
    }
}

/// One model a CLI accepts.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ModelEntry {
    pub id: String,
    pub source: Origin,
    pub description: String,
}

/// One alias: a short name the gateway rewrites to `target` before calling the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AliasEntry {
    pub name: String,
    pub target: String,
    pub source: Origin,
}

/// Everything `list_models` reports for one CLI.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CliModels {
    pub cli: Provider,
    /// The configured default, passed when a request names no model (or `default`/`latest`);
    /// null means the CLI picks its own.
    pub default_model: Option<String>,
    pub default_source: Option<Origin>,
    pub models: Vec<ModelEntry>,
    pub aliases: Vec<AliasEntry>,
    pub warnings: Vec<String>,
}

/// The outcome of resolving a request's `model` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The model to pass to the CLI, or `None` to emit no model flag at all.
    pub model: Option<String>,
    /// The alias that was rewritten, when one was.
    pub via_alias: Option<String>,
}

/// The bundled table. Claude's CLI documents `sonnet` and `opus` as aliases for the latest
/// model of a family (and accepts `haiku` the same way); these names never go stale.
fn bundled(provider: Provider) -> &'static [(&'static str, &'static str)] {
    match provider {
        Provider::Claude => &[
            ("opus", "claude's alias for the newest Opus model"),
            ("sonnet", "claude's alias for the newest Sonnet model"),
            ("haiku", "claude's alias for the newest Haiku model"),
        ],
        Provider::Codex | Provider::Gemini | Provider::Grok | Provider::Mistral => &[],
    }
}

/// The registry for every CLI, built once from the resolved config.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    by_cli: BTreeMap<Provider, CliModels>,
}

impl ModelRegistry {
    pub fn new(config: &Config) -> Self {
        let by_cli = Provider::ALL
            .into_iter()
            .map(|p| (p, catalogue(p, config.models_of(p))))
            .collect();
        ModelRegistry { by_cli }
    }

    /// What `list_models` reports for one CLI.
    pub fn for_cli(&self, provider: Provider) -> &CliModels {
        &self.by_cli[&provider]
    }

    /// Resolves a request's `model`: absent, `default` and `latest` mean the configured
    /// default (or no flag; the default may itself be an alias); an alias becomes its target; anything else passes through, since
    /// every CLI accepts model ids the gateway has never heard of.
    pub fn resolve(&self, provider: Provider, requested: Option<&str>) -> ResolvedModel {
        let entry = self.for_cli(provider);
        let name = match requested.map(str::trim) {
            None | Some("") | Some("default") | Some("latest") => match &entry.default_model {
                Some(default) => default.as_str(),
                None => {
                    return ResolvedModel {
                        model: None,
                        via_alias: None,
                    };
                }
            },
            Some(name) => name,
        };
        match entry.aliases.iter().find(|a| a.name == name) {
            Some(alias) => ResolvedModel {
                model: Some(alias.target.clone()),
                via_alias: Some(alias.name.clone()),
            },
            None => ResolvedModel {
                model: Some(name.to_string()),
                via_alias: None,
            },
        }
    }
}

fn catalogue(provider: Provider, configured: &ModelsConfig) -> CliModels {
    let mut models: Vec<ModelEntry> = bundled(provider)
        .iter()
        .map(|(id, description)| ModelEntry {
            id: (*id).to_string(),
            source: Origin::Bundled,
            description: (*description).to_string(),
        })
        .collect();
    let mut aliases = Vec::new();
    let mut warnings = Vec::new();

    for id in &configured.extra {
        if !models.iter().any(|m| &m.id == id) {
            models.push(ModelEntry {
                id: id.clone(),
                source: Origin::Config,
                description: "listed in config.toml".to_string(),
            });
        }
    }
    for (name, target) in &configured.aliases {
        if models.iter().any(|m| &m.id == name) {
            warnings.push(format!(
                "alias \"{name}\" shadows the model of the same name: requests for \
                 \"{name}\" go to \"{}\"",
                target.value
            ));
        }
        aliases.push(AliasEntry {
            name: name.clone(),
            target: target.value.clone(),
            source: target.source.into(),
        });
    }
    CliModels {
        cli: provider,
        default_model: configured.default.as_ref().map(|d| d.value.clone()),
        default_source: configured.default.as_ref().map(|d| d.source.into()),
        models,
        aliases,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Env, load_from_str};
    use std::path::Path;

    fn registry(toml: &str, env: &[(&str, &str)]) -> ModelRegistry {
        let mut pairs = vec![("HOME", "/home/u")];
        pairs.extend_from_slice(env);
        let env = Env::from_pairs(pairs);
        let loaded = load_from_str(toml, Path::new("/home/u/config.toml"), &env).unwrap();
        ModelRegistry::new(&loaded.config)
    }

    #[test]
    fn without_configuration_no_model_flag_is_passed() {
        let env = Env::from_pairs([("HOME", "/home/u")]);
        let models = ModelRegistry::new(&Config::defaults(&env));
        for provider in Provider::ALL {
            for requested in [None, Some("default"), Some("latest"), Some("")] {
                assert_eq!(
                    models.resolve(provider, requested),
                    ResolvedModel {
                        model: None,
                        via_alias: None
                    },
                    "{provider} {requested:?}"
                );
            }
        }
        // Unknown ids pass through: every CLI knows models the gateway has never heard of.
        assert_eq!(
            models
                .resolve(Provider::Codex, Some("gpt-9"))
                .model
                .as_deref(),
            Some("gpt-9")
        );
        assert_eq!(
            models
                .resolve(Provider::Claude, Some("opus"))
                .model
                .as_deref(),
            Some("opus")
        );
    }

    #[test]
    fn aliases_and_defaults_resolve_with_env_over_file() {
        let models = registry(
            "[models.claude]\ndefault = \"fast\"\naliases = { fast = \"haiku\", deep = \"opus\" }\n",
            &[("CLAUDE_MODEL_ALIASES", "deep=claude-opus-4-1")],
        );
        // The default may itself be an alias.
        assert_eq!(
            models.resolve(Provider::Claude, None),
            ResolvedModel {
                model: Some("haiku".into()),
                via_alias: Some("fast".into())
            }
        );
        assert_eq!(
            models
                .resolve(Provider::Claude, Some("latest"))
                .model
                .as_deref(),
            Some("haiku")
        );
        let deep = models.resolve(Provider::Claude, Some("deep"));
        assert_eq!(deep.model.as_deref(), Some("claude-opus-4-1"));
        let claude = models.for_cli(Provider::Claude);
        let deep_alias = claude.aliases.iter().find(|a| a.name == "deep").unwrap();
        assert_eq!(deep_alias.source, Origin::Env);
        assert_eq!(claude.default_source, Some(Origin::Config));
    }

    #[test]
    fn an_alias_shadowing_a_model_is_reported() {
        let models = registry(
            "[models.claude]\naliases = { sonnet = \"claude-sonnet-4-5\" }\n",
            &[],
        );
        let claude = models.for_cli(Provider::Claude);
        assert_eq!(claude.warnings.len(), 1, "{:?}", claude.warnings);
        assert!(claude.warnings[0].contains("alias \"sonnet\" shadows"));
        assert_eq!(
            models
                .resolve(Provider::Claude, Some("sonnet"))
                .model
                .as_deref(),
            Some("claude-sonnet-4-5")
        );
    }

    #[test]
    fn extra_models_are_listed_once_with_their_source() {
        let models = registry(
            "[models.grok]\nextra = [\"grok-4\", \"grok-4\"]\n",
            &[("GROK_DEFAULT_MODEL", "grok-4")],
        );
        let grok = models.for_cli(Provider::Grok);
        assert_eq!(grok.models.len(), 1);
        assert_eq!(grok.models[0].source, Origin::Config);
        assert_eq!(grok.default_model.as_deref(), Some("grok-4"));
        assert_eq!(grok.default_source, Some(Origin::Env));
    }
}
