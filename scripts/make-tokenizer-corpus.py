#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/corpus.json: the strings the tokenizer parity test encodes.

Deterministic: code in several languages, prose, Unicode scripts, emoji, whitespace runs, and
special-token text, plus generated variations of each.
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent

base = [
    "", " ", "  ", "\n", "\t", "hello", " hello", "hello ", "Hello world", "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll come; we've seen it, haven't we? DON'T SHOUT. You'd, she's, I'LL",
    "It's 3.14159 and 2,718,281 and 1e-9 and 0xDEADBEEF and 1234567890123",
    "Call 555-0100 on 2026-11-25 at 09:30:00Z.",
    "def add(a, b):\n    return a + b\n",
    "class Foo:\n    def __init__(self):\n        self.x = [1, 2, 3]\n\n\nif __name__ == '__main__':\n    Foo()\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!(\"{:?}\", v);\n}\n",
    "impl<'a> Iterator for Tokens<'a> {\n    type Item = &'a str;\n}",
    "const f = async (x) => { await fetch(`/api/${x}`); return x ?? null; };",
    "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\" | tr a-z A-Z; done\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    "<html><body><div class=\"x\">Hi &amp; bye</div></body></html>",
    "{\"name\": \"read\", \"arguments\": {\"path\": \"src/main.rs\", \"offset\": 10}}",
    "key: value\nlist:\n  - a\n  - b\nnested:\n    deep: true\n",
    "all:\n\tcargo build --release\n\ntest:\n\tcargo nextest run\n",
    "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,4 @@\n fn a() {}\n+fn b() {}\n",
    "public static void main(String[] args) { System.out.println(\"x\"); }",
    "x = {k: v for k, v in d.items() if v is not None}  # comment",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@example\\.com$",
    "https://example.com/path/to/file.rs?query=1&other=two#frag",
    "/home/user/.cache/hearth/models/qwen2.5-coder-1.5b/model.gguf",
    "C:\\Users\\Name\\Documents\\file.txt",
    "aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQ=",
    "Ünïcödé façade naïve café résumé Ångström", "Straße Größe Fußball", "Ελληνικά κείμενο εδώ",
    "Русский текст, пример.", "中文文本，测试一下分词器。", "日本語のテキストです。カタカナ、ひらがな。",
    "한국어 텍스트입니다.", "النص العربي هنا", "טקסט בעברית", "हिन्दी पाठ यहाँ है", "ข้อความภาษาไทย",
    "e\u0301 a\u0308 n\u0303 (combining marks)", "zero\u200bwidth\u200djoiner", "non\u00a0breaking\u00a0space",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ", "∀x∈ℝ: x² ≥ 0 ⇒ √x ∈ ℝ", "→ ← ↑ ↓ ⌘ ⌥ ⇧", "“quotes” ‘single’ «guillemets» — dash – en…",
    "🦀", "🦀🦀🦀", "I ❤️ Rust 🦀!", "👨‍👩‍👧‍👦 family", "👍🏽 👍🏿", "🇫🇷🇯🇵🇺🇸", "😀😃😄😁😆😅🤣😂",
    "a\u0000b", "tab\there", "cr\r\nlf", "\r\n\r\n", "trailing   ", "   leading", "\n\n\n\n", "\t\t\t",
    " \n \n ", "line1\nline2\n\nline4", "    indented\n        more\n",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
    "<tool_call>\n{\"name\": \"grep\", \"arguments\": {\"pattern\": \"fn \"}}\n</tool_call>",
    "<tool_response>ok</tool_response>", "<|endoftext|>", "text<|endoftext|>more", "<|im_start",
    "<|im_end|><|im_end|>", "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>hello", "<s> hi </s>", "<unk>", "<pad>", "<eos>", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<|file_sep|>path.py", "<think>reason</think>", "<<>>", "<|", "|>", "< |im_start| >",
    "a" * 100, "ab" * 50, "1" * 40, "." * 30, "-" * 80, "=" * 64, "#" * 20, "_" * 33,
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "camelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case-id",
    "HTTPServerError XMLHttpRequest getHTTPResponseCode",
    "a.b.c.d e,f,g;h:i!j?k", "(((nested)))[[[x]]]{{{y}}}", "!!!???...,,,;;;", "$100 €50 £30 ¥1000 ₹200",
    "@user #hashtag &amp; %20 ^caret ~tilde `backtick`", "\\n\\t\\\\ escaped", "'single' \"double\" `back`",
    "print('it''s')", "don't won't can't shouldn't", "O'Reilly's rock'n'roll", "'s 't 're 've 'm 'll 'd",
    "'S 'T 'RE 'VE 'M 'LL 'D", "1,000,000.00", "v1.2.3-beta+build.5", "0.1 + 0.2 != 0.3",
]

spaces = [" " * n + "x" for n in range(1, 17)] + ["x" + " " * n + "y" for n in (2, 3, 4, 7, 8, 15, 16, 31)]
tabs = ["\t" * n + "y" for n in range(1, 6)] + ["\n" * n + "z" for n in range(1, 7)]
mixed = [" \t \n\t x", "\u3000\u3000全角", "\u2003em space", "\v\f vertical"]
words = ["return", "function", "import", "await", "struct", "hello", "world", "éclair", "数据", "🦀"]
variations = []
for w in words:
    variations += [w, " " + w, w.upper(), w.capitalize() + ".", f"({w})", f"{w}\n", f"  {w}  ", f"{w}_{w}", f"{w}123"]
numbers = [str(n) for n in (0, 7, 42, 100, 999, 1000, 12345, 987654321)] + ["3.0", "-17", "+5", "1/2", "2^10"]

corpus = base + spaces + tabs + mixed + variations + numbers
seen = set()
corpus = [s for s in corpus if not (s in seen or seen.add(s))]
out = ROOT / "tests/fixtures/tokenizer/corpus.json"
out.write_text(json.dumps(corpus, ensure_ascii=False, indent=0) + "\n")
print(f"{len(corpus)} strings -> {out}")
