//! The registry of known models, built from the manifests compiled into the binary.

use crate::error::HubError;
use crate::manifest::Manifest;

/// The manifests in `models/`, embedded so the binary works from any directory.
const BUILTIN_MANIFESTS: &[(&str, &str)] = &[
    ("smollm2-135m.toml", include_str!("../../../models/smollm2-135m.toml")),
    ("qwen2.5-coder-0.5b.toml", include_str!("../../../models/qwen2.5-coder-0.5b.toml")),
    ("qwen2.5-coder-1.5b.toml", include_str!("../../../models/qwen2.5-coder-1.5b.toml")),
    ("gemma3-270m.toml", include_str!("../../../models/gemma3-270m.toml")),
];

/// The set of models hearth knows by name.
#[derive(Debug, Clone)]
pub struct Registry {
    manifests: Vec<Manifest>,
    default_index: usize,
}

impl Registry {
    /// The models built into hearth.
    pub fn builtin() -> Result<Registry, HubError> {
        let manifests =
            BUILTIN_MANIFESTS.iter().map(|(file, text)| Manifest::parse(text, file)).collect::<Result<Vec<_>, _>>()?;
        Registry::from_manifests(manifests)
    }

    /// A registry of the given manifests; ids and aliases must be unique and exactly one
    /// manifest must be the default.
    pub fn from_manifests(manifests: Vec<Manifest>) -> Result<Registry, HubError> {
        let invalid = |source_name: &str, reason: String| HubError::InvalidManifest {
            source_name: source_name.to_string(),
            reason,
        };
        let mut names: Vec<&str> = Vec::new();
        for manifest in &manifests {
            for name in std::iter::once(&manifest.id).chain(&manifest.aliases) {
                if names.contains(&name.as_str()) {
                    return Err(invalid(&manifest.id, format!("the name '{name}' is used by two models")));
                }
                names.push(name);
            }
        }
        let defaults: Vec<usize> =
            manifests.iter().enumerate().filter(|(_, manifest)| manifest.default).map(|(index, _)| index).collect();
        let default_index = match defaults.as_slice() {
            [index] => *index,
            _ => {
                return Err(invalid(
                    "registry",
                    format!("exactly one model must have default = true, found {}", defaults.len()),
                ));
            }
        };
        Ok(Registry { manifests, default_index })
    }

    /// The model used when none is named.
    pub fn default_model(&self) -> &Manifest {
        &self.manifests[self.default_index]
    }

    /// The model that `spec` names (id, alias, or name in any case), if any.
    pub fn get(&self, spec: &str) -> Option<&Manifest> {
        self.manifests
            .iter()
            .find(|manifest| manifest.id == spec)
            .or_else(|| self.manifests.iter().find(|manifest| manifest.matches(spec)))
    }

    /// Like [`Registry::get`], but an unknown name is an error listing the known ids.
    pub fn lookup(&self, spec: &str) -> Result<&Manifest, HubError> {
        self.get(spec).ok_or_else(|| HubError::UnknownModel { spec: spec.to_string(), known: self.ids().join(", ") })
    }

    /// All known models, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = &Manifest> {
        self.manifests.iter()
    }

    /// The ids of all known models.
    pub fn ids(&self) -> Vec<&str> {
        self.manifests.iter().map(|m| m.id.as_str()).collect()
    }
}

#[cfg(test)]
mod tests;
