#![allow(clippy::unwrap_used)]

use std::io::Write;

use serde_json::json;

use super::*;

fn render(source: &str, messages: &[ChatMessage]) -> Result<String, ChatTemplateError> {
    ChatTemplate::new(source, "<s>", "</s>")?.render(messages, None, false)
}

const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

#[test]
fn renders_turns_and_generation_prompt() {
    let t = ChatTemplate::new(CHATML, "", "").unwrap();
    let messages = [ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
    assert_eq!(
        t.render(&messages, None, true).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert!(t.render(&messages, None, false).unwrap().ends_with("Hi<|im_end|>\n"));
}

#[test]
fn blocks_are_trimmed_like_hugging_face() {
    // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
    let source =
        "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}\n";
    assert_eq!(render(source, &[ChatMessage::user("a"), ChatMessage::user("b")]).unwrap(), "[a]\n[b]\n");
    // A newline after an expression is kept, and so is the template's last newline.
    assert_eq!(render("{{ messages[0].content }}\nend\n", &[ChatMessage::user("x")]).unwrap(), "x\nend\n");
}

#[test]
fn undefined_values_are_lenient_like_jinja2() {
    let source = "{{ nothing }}{% if messages[0].tool_calls %}calls{% endif %}\
{% if messages[0].name is defined %}named{% endif %}{% for x in nothing %}{{ x }}{% endfor %}|{{ tools is defined }}";
    assert_eq!(render(source, &[ChatMessage::user("x")]).unwrap(), "|False");
}

#[test]
fn python_string_and_dict_methods_work() {
    let source = "{{ messages[0].content.strip() }}|{{ messages[0].content.startswith('  a') }}|\
{{ messages[0].content.split(',') | length }}|{{ messages[0].content.upper().strip() }}|\
{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}|{{ messages[0].get('role') }}";
    assert_eq!(render(source, &[ChatMessage::user("  a,b  ")]).unwrap(), "a,b|True|2|A,B|a=1|user");
}

#[test]
fn loop_controls_and_namespaces_work() {
    let source = "{% set ns = namespace(n=0) %}{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}\
{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}";
    let messages = vec![ChatMessage::user("x"); 5];
    assert_eq!(render(source, &messages).unwrap(), "2");
}

#[test]
fn a_template_that_does_not_parse_is_a_parse_error() {
    let err = ChatTemplate::new("{% for m in messages %}{{ m.content }}", "", "").unwrap_err();
    assert!(matches!(err, ChatTemplateError::Parse(_)), "{err}");
    assert!(err.to_string().contains("chat_template"), "the error names the template: {err}");
}

#[test]
fn raise_exception_is_a_raised_error_with_the_message() {
    let source = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user turn') }}{% endif %}ok";
    assert_eq!(render(source, &[ChatMessage::user("x")]).unwrap(), "ok");
    let err = render(source, &[ChatMessage::assistant("x")]).unwrap_err();
    match err {
        ChatTemplateError::Raised { message } => assert_eq!(message, "Conversation must start with a user turn"),
        other => panic!("expected Raised, got {other}"),
    }
}

#[test]
fn other_failures_are_render_errors() {
    let err = render("{{ messages | no_such_filter }}", &[]).unwrap_err();
    assert!(matches!(err, ChatTemplateError::Render(_)), "{err}");
    assert!(err.to_string().contains("no_such_filter"), "{err}");
    let err = render("{{ nothing.attribute }}", &[]).unwrap_err();
    assert!(matches!(err, ChatTemplateError::Render(_)), "{err}");
}

#[test]
fn messages_reach_the_template_in_llama_cpp_shape() {
    let messages = [
        ChatMessage::assistant_tool_calls(
            None,
            vec![
                ToolCall::function(Some("c1".into()), "read", json!("{\"path\": \"a.rs\", \"n\": 2}")),
                ToolCall::function(None, "ls", json!({"dir": "src"})),
                ToolCall::function(Some(String::new()), "bad", json!("not json")),
            ],
        ),
        ChatMessage::tool_result(Some("c1".into()), Some("read".into()), "fn main() {}"),
        ChatMessage::tool_result(None, Some(String::new()), "x"),
    ];
    // Content is "" rather than none, string arguments holding JSON arrive as objects, and
    // absent or empty ids and names are undefined.
    let t = ChatTemplate::new("{{ messages | tojson }}", "", "").unwrap();
    let rendered: serde_json::Value = serde_json::from_str(&t.render(&messages, None, false).unwrap()).unwrap();
    assert_eq!(
        rendered,
        json!([
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "read", "arguments": {"path": "a.rs", "n": 2}}, "id": "c1"},
                {"type": "function", "function": {"name": "ls", "arguments": {"dir": "src"}}},
                {"type": "function", "function": {"name": "bad", "arguments": "not json"}},
            ]},
            {"role": "tool", "content": "fn main() {}", "name": "read", "tool_call_id": "c1"},
            {"role": "tool", "content": "x"},
        ])
    );
    // Key order is kept, so `tojson` writes arguments as the caller ordered them.
    let t = ChatTemplate::new("{{ messages[0].tool_calls[0].function.arguments | tojson }}", "", "").unwrap();
    assert_eq!(t.render(&messages, None, false).unwrap(), r#"{"path": "a.rs", "n": 2}"#);
}

#[test]
fn tools_are_normalised_to_openai_function_tools() {
    let t = ChatTemplate::new("{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}", "", "").unwrap();
    let tools = [
        json!({"function": {"parameters": {"type": "object", "properties": {"b": {}, "a": {}}}, "name": "f",
               "strict": true}, "type": "function"}),
        json!({"type": "function", "function": {"name": "g", "description": "Does g."}}),
    ];
    assert_eq!(
        t.render(&[], Some(&tools), false).unwrap(),
        "{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"\", \"parameters\": \
         {\"type\": \"object\", \"properties\": {\"b\": {}, \"a\": {}}}}}\n\
         {\"type\": \"function\", \"function\": {\"name\": \"g\", \"description\": \"Does g.\", \"parameters\": {}}}\n"
    );
    // No tools, or an empty list, leave `tools` undefined.
    let t = ChatTemplate::new("{{ tools is defined }}", "", "").unwrap();
    assert_eq!(t.render(&[], Some(&[]), false).unwrap(), "False");
    assert_eq!(t.render(&[], None, false).unwrap(), "False");
}

#[test]
fn malformed_tools_are_named() {
    let t = ChatTemplate::new("", "", "").unwrap();
    let cases = [
        (json!({"type": "retrieval"}), "\"type\""),
        (json!({"type": "function"}), "\"function\""),
        (json!({"type": "function", "function": {"description": "x"}}), "\"name\""),
        (json!({"type": "function", "function": {"name": "f", "description": 3}}), "\"description\""),
    ];
    for (tool, problem) in cases {
        let ok = json!({"type": "function", "function": {"name": "ok"}});
        let err = t.render(&[], Some(&[ok, tool.clone()]), false).unwrap_err();
        assert!(matches!(err, ChatTemplateError::InvalidTool { index: 1, .. }), "{tool}: {err}");
        assert!(err.to_string().contains(problem), "{tool}: {err}");
    }
}

#[test]
fn bos_and_eos_are_dropped_only_when_the_tokenizer_adds_them() {
    let source = "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}";
    let messages = [ChatMessage::user("hi")];
    let t = ChatTemplate::new(source, "<bos>", "<eos>").unwrap();
    assert_eq!(t.render(&messages, None, false).unwrap(), "<bos>hi<eos>");
    let t = t.with_tokenizer_adding(true, false);
    assert_eq!(t.render(&messages, None, false).unwrap(), "hi<eos>");
    let t = t.with_tokenizer_adding(true, true);
    assert_eq!(t.render(&messages, None, false).unwrap(), "hi");
    // Only a leading BOS goes: one the template writes elsewhere is its own business.
    let t = ChatTemplate::new("x{{ bos_token }}", "<bos>", "").unwrap().with_tokenizer_adding(true, true);
    assert_eq!(t.render(&messages, None, false).unwrap(), "x<bos>");
}

#[test]
fn strftime_now_formats_the_current_date() {
    let out = render("{{ strftime_now('%Y-%m-%d') }}", &[]).unwrap();
    assert_eq!(out.len(), 10, "{out}");
    assert!(out.starts_with("20"), "{out}");
}

#[test]
fn chat_template_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<ChatTemplate>();
}

/// A GGUF holding only tokenizer metadata.
fn write_gguf(keys: &[(&str, Meta<'_>)]) -> tempfile::NamedTempFile {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    for (key, value) in keys {
        put_str(&mut out, key);
        match value {
            Meta::Str(s) => {
                out.extend_from_slice(&8u32.to_le_bytes());
                put_str(&mut out, s);
            }
            Meta::U32(v) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&v.to_le_bytes());
            }
            Meta::Bool(b) => {
                out.extend_from_slice(&7u32.to_le_bytes());
                out.push(u8::from(*b));
            }
            Meta::Strs(items) => {
                out.extend_from_slice(&9u32.to_le_bytes());
                out.extend_from_slice(&8u32.to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for s in *items {
                    put_str(&mut out, s);
                }
            }
        }
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&out).unwrap();
    file
}

enum Meta<'a> {
    Str(&'a str),
    U32(u32),
    Bool(bool),
    Strs(&'a [&'a str]),
}

const VOCAB: Meta<'static> = Meta::Strs(&["<unk>", "<bos>", "<eos>", "hello"]);

#[test]
fn from_gguf_prefers_the_files_template_and_reads_special_tokens() {
    let file = write_gguf(&[
        ("tokenizer.ggml.model", Meta::Str("gpt2")),
        ("tokenizer.ggml.tokens", VOCAB),
        ("tokenizer.ggml.bos_token_id", Meta::U32(1)),
        ("tokenizer.ggml.eos_token_id", Meta::U32(2)),
        ("tokenizer.chat_template", Meta::Str("{{ bos_token }}file{{ eos_token }}")),
    ]);
    let gguf = GgufFile::open(file.path()).unwrap();
    let t = ChatTemplate::from_gguf(&gguf, Some("fallback")).unwrap();
    assert_eq!((t.bos_token(), t.eos_token()), ("<bos>", "<eos>"));
    // Byte-level BPE adds no BOS by default, so the template's BOS stays.
    assert_eq!(t.render(&[], None, false).unwrap(), "<bos>file<eos>");
}

#[test]
fn from_gguf_falls_back_and_drops_bos_the_tokenizer_adds() {
    let file = write_gguf(&[
        ("tokenizer.ggml.model", Meta::Str("llama")),
        ("tokenizer.ggml.tokens", VOCAB),
        ("tokenizer.ggml.bos_token_id", Meta::U32(1)),
    ]);
    let gguf = GgufFile::open(file.path()).unwrap();
    let t = ChatTemplate::from_gguf(&gguf, Some("{{ bos_token }}fallback")).unwrap();
    assert_eq!((t.bos_token(), t.eos_token()), ("<bos>", ""));
    // A SentencePiece vocabulary adds BOS unless the file says otherwise.
    assert_eq!(t.render(&[], None, false).unwrap(), "fallback");
    assert!(matches!(ChatTemplate::from_gguf(&gguf, None), Err(ChatTemplateError::Missing)));

    let file = write_gguf(&[
        ("tokenizer.ggml.model", Meta::Str("llama")),
        ("tokenizer.ggml.tokens", VOCAB),
        ("tokenizer.ggml.bos_token_id", Meta::U32(1)),
        ("tokenizer.ggml.add_bos_token", Meta::Bool(false)),
    ]);
    let gguf = GgufFile::open(file.path()).unwrap();
    let t = ChatTemplate::from_gguf(&gguf, Some("{{ bos_token }}fallback")).unwrap();
    assert_eq!(t.render(&[], None, false).unwrap(), "<bos>fallback");
}

#[test]
fn from_gguf_names_bad_metadata() {
    let file = write_gguf(&[("tokenizer.ggml.tokens", VOCAB), ("tokenizer.ggml.eos_token_id", Meta::U32(9))]);
    let gguf = GgufFile::open(file.path()).unwrap();
    let err = ChatTemplate::from_gguf(&gguf, Some("x")).unwrap_err();
    assert!(
        matches!(err, ChatTemplateError::TokenOutOfRange { key: "tokenizer.ggml.eos_token_id", id: 9, vocab: 4 }),
        "{err}"
    );

    let file = write_gguf(&[("tokenizer.chat_template", Meta::U32(3))]);
    let gguf = GgufFile::open(file.path()).unwrap();
    let err = ChatTemplate::from_gguf(&gguf, Some("x")).unwrap_err();
    assert!(matches!(err, ChatTemplateError::Gguf(GgufError::WrongType { .. })), "{err}");

    let file = write_gguf(&[("tokenizer.chat_template", Meta::Str("{% if %}"))]);
    let gguf = GgufFile::open(file.path()).unwrap();
    assert!(matches!(ChatTemplate::from_gguf(&gguf, None), Err(ChatTemplateError::Parse(_))));
}
