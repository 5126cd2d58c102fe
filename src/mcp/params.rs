//! Turning a tool call's raw argument object into a typed parameter struct.
//!
//! rmcp's `Parameters<T>` rejects bad input with a bare text; callers need to know which
//! field was wrong and why. So: every key is checked against the tool's advertised input
//! schema first (an unknown parameter is named, with a suggestion), every string is checked
//! for NUL bytes (they cannot reach a CLI's argv), and only then is the object deserialized,
//! with the path of the offending field in the message.

use rmcp::model::JsonObject;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::result::ToolError;

/// Parses `arguments` for `tool`, whose input schema is `schema`.
pub fn parse<T: DeserializeOwned>(
    tool: &str,
    schema: &JsonObject,
    arguments: Option<JsonObject>,
) -> Result<T, ToolError> {
    let arguments = arguments.unwrap_or_default();
    let known: Vec<&str> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for key in arguments.keys() {
        if !known.contains(&key.as_str()) {
            return Err(unknown_parameter(tool, key, &known));
        }
    }
    for (key, value) in &arguments {
        reject_nul(key, value)?;
    }
    serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        let message = if path == "." {
            format!("Invalid arguments for {tool}: {inner}")
        } else {
            format!("Invalid {path}: {inner}")
        };
        ToolError::invalid_input(
            message,
            format!("Correct the argument; the input schema of {tool} lists every parameter and its type."),
        )
    })
}

fn unknown_parameter(tool: &str, key: &str, known: &[&str]) -> ToolError {
    let suggestion = crate::suggest::closest(key, known)
        .map(|near| format!(" (did you mean \"{near}\"?)"))
        .unwrap_or_default();
    let listed = if known.is_empty() {
        "it takes no parameters".to_string()
    } else {
        format!("known parameters: {}", known.join(", "))
    };
    ToolError::invalid_input(
        format!("Unknown parameter \"{key}\" for {tool}{suggestion}"),
        format!("Remove or rename it; {listed}."),
    )
}

/// Rejects a NUL byte in any string (key or value) of the arguments, naming where it is.
fn reject_nul(path: &str, value: &Value) -> Result<(), ToolError> {
    match value {
        Value::String(s) if s.contains('\0') => Err(ToolError::invalid_input(
            format!("Invalid {path}: contains a NUL byte"),
            "Remove the NUL (\\u0000) character; it cannot be passed to a command line.",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| reject_nul(&format!("{path}[{i}]"), item)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| reject_nul(&format!("{path}.{k}"), v)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Sample {
        cli: String,
        #[serde(default)]
        set_as_active: Option<bool>,
        #[serde(default)]
        add_dir: Vec<String>,
    }

    fn schema() -> JsonObject {
        rmcp::handler::server::common::schema_for_input::<Sample>()
            .unwrap()
            .as_ref()
            .clone()
    }

    fn args(value: Value) -> Option<JsonObject> {
        value.as_object().cloned()
    }

    #[test]
    fn unknown_parameter_is_named_with_a_suggestion() {
        let error = parse::<Sample>(
            "t",
            &schema(),
            args(json!({"cli": "x", "setAsActiv": true})),
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "Unknown parameter \"setAsActiv\" for t (did you mean \"setAsActive\"?)"
        );
        assert!(
            error.remediation.contains("cli, setAsActive, addDir")
                || error.remediation.contains("known parameters")
        );
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let error = parse::<Sample>(
            "t",
            &schema(),
            args(json!({"cli": "x", "addDir": ["a", 3]})),
        )
        .unwrap_err();
        assert!(
            error
                .message
                .starts_with("Invalid addDir[1]: invalid type: integer `3`"),
            "{}",
            error.message
        );
        let error = parse::<Sample>("t", &schema(), args(json!({}))).unwrap_err();
        assert!(
            error.message.contains("missing field `cli`"),
            "{}",
            error.message
        );
    }

    #[test]
    fn nul_bytes_are_rejected_anywhere() {
        let error = parse::<Sample>(
            "t",
            &schema(),
            args(json!({"cli": "x", "addDir": ["ok", "b\u{0}"]})),
        )
        .unwrap_err();
        assert_eq!(error.message, "Invalid addDir[1]: contains a NUL byte");
    }

    #[test]
    fn good_arguments_parse() {
        let parsed = parse::<Sample>(
            "t",
            &schema(),
            args(json!({"cli": "claude", "setAsActive": false, "addDir": ["d"]})),
        )
        .unwrap();
        assert_eq!(parsed.cli, "claude");
        assert_eq!(parsed.set_as_active, Some(false));
        assert_eq!(parsed.add_dir, ["d"]);
        assert!(parse::<Sample>("t", &schema(), None).is_err());
    }
}
