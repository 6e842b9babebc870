use super::*;

const VALID: &str = r#"
id = "tiny-model"
name = "Tiny-Model"
architecture = "llama"
quantization = "Q4_0"
file = "tiny.gguf"
size = 10
sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
chat_format = "chatml"
tool_format = "generic"

[hub]
repo = "owner/tiny-GGUF"
file = "tiny.gguf"

[mirror]
parts = [{ package = "tiny-part1==1.0.0", member = "tiny_part1/data/part01.bin" }]
"#;

fn parse_with(replace: &str, with: &str) -> Result<Manifest, HubError> {
    assert!(VALID.contains(replace), "test fixture lacks {replace:?}");
    Manifest::parse(&VALID.replacen(replace, with, 1), "test.toml")
}

fn reason(result: Result<Manifest, HubError>) -> String {
    match result {
        Err(HubError::InvalidManifest { source_name, reason }) => {
            assert_eq!(source_name, "test.toml");
            reason
        }
        other => panic!("expected an invalid manifest, got {other:?}"),
    }
}

#[test]
fn parses_a_valid_manifest() {
    let manifest = Manifest::parse(VALID, "test.toml").unwrap();
    assert_eq!(manifest.id, "tiny-model");
    assert_eq!(manifest.size, 10);
    assert_eq!(manifest.chat_format, ChatFormat::Chatml);
    assert_eq!(manifest.tool_format, ToolFormat::Generic);
    assert!(!manifest.default);
    assert!(manifest.aliases.is_empty());
    assert_eq!(manifest.hub.revision, None);
    assert_eq!(manifest.mirror.parts[0].distribution(), "tiny-part1");
}

#[test]
fn rejects_bad_sha256() {
    let short = parse_with("0123456789abcdef0123", "0123");
    assert!(reason(short).contains("64 lowercase hex"));
    let upper = parse_with("0123456789abcdef0123", "0123456789ABCDEF0123");
    assert!(reason(upper).contains("sha256"));
    let non_hex = parse_with("0123456789abcdef0123", "0123456789abcdeg0123");
    assert!(reason(non_hex).contains("sha256"));
}

#[test]
fn rejects_bad_fields() {
    assert!(reason(parse_with("id = \"tiny-model\"", "id = \"Tiny Model\"")).contains("id"));
    assert!(reason(parse_with("size = 10", "size = 0")).contains("size"));
    assert!(reason(parse_with("file = \"tiny.gguf\"\nsize", "file = \"../tiny.gguf\"\nsize")).contains("file"));
    assert!(reason(parse_with("file = \"tiny.gguf\"\nsize", "file = \"tiny.bin\"\nsize")).contains(".gguf"));
    assert!(reason(parse_with("owner/tiny-GGUF", "tiny-GGUF")).contains("owner/name"));
    assert!(reason(parse_with("tiny-part1==1.0.0", "tiny-part1")).contains("NAME==VERSION"));
    assert!(reason(parse_with("tiny_part1/data", "../data")).contains("member"));
    assert!(reason(parse_with("parts = [{ package", "parts = []\nold = [{ package")).contains("unknown field"));
    assert!(reason(parse_with("chat_format = \"chatml\"", "chat_format = \"alpaca\"")).contains("alpaca"));
    assert!(reason(parse_with("tool_format = \"generic\"", "tool_format = \"json\"")).contains("json"));
}

#[test]
fn rejects_unknown_and_missing_fields() {
    assert!(reason(parse_with("id = \"tiny-model\"", "id = \"tiny-model\"\ncolour = \"red\"")).contains("colour"));
    assert!(reason(parse_with("size = 10\n", "")).contains("size"));
    assert!(reason(parse_with("[mirror]", "[mirror]\nparts = []\n[unused]")).contains("unused"));
}

#[test]
fn empty_mirror_is_rejected() {
    let text = VALID.replace(
        "parts = [{ package = \"tiny-part1==1.0.0\", member = \"tiny_part1/data/part01.bin\" }]",
        "parts = []",
    );
    assert!(reason(Manifest::parse(&text, "test.toml")).contains("mirror.parts is empty"));
}

#[test]
fn matches_id_alias_and_name_case_insensitively() {
    let manifest = parse_with("id = \"tiny-model\"", "id = \"tiny-model\"\naliases = [\"tiny\"]").unwrap();
    assert!(manifest.matches("tiny-model"));
    assert!(manifest.matches("tiny"));
    assert!(manifest.matches("Tiny-Model"));
    assert!(manifest.matches("TINY-MODEL"));
    assert!(!manifest.matches("Tiny"));
    assert!(!manifest.matches("other"));
}
