#![allow(clippy::unwrap_used)]

use super::*;

const TESTS: &str = "from mathx import subtract\n\n\ndef test_zero():\n    assert subtract(1, 1) == 0\n";

#[test]
fn top_level_definitions_are_found_and_nested_ones_are_not() {
    let text = "import os\n\nclass Box(Base):\n    def size(self):\n        pass\n\nasync def fetch(url):\n    pass\nclass Empty:\n    pass\ndefine = 1\n";
    let found: Vec<(usize, &str)> = top_level_defs(text).map(|def| (def.number, def.name)).collect();
    assert_eq!(found, vec![(3, "Box"), (7, "fetch"), (9, "Empty")]);
}

#[test]
fn a_new_top_level_function_with_self_is_named_with_the_fix() {
    let after = format!("{TESTS}\ndef test_subtract(self):\n    assert subtract(5, 3) == 2\n");
    let note = definition_notes("test_mathx.py", Some(TESTS), &after).unwrap();
    assert!(note.starts_with("`test_subtract` (line 7) takes `self` but it is defined at the top level"), "{note}");
    let call = r#"call edit with these arguments: {"path":"test_mathx.py","old_string":"def test_subtract(self):","new_string":"def test_subtract():"}"#;
    assert!(note.contains(call), "{note}");
}

#[test]
fn other_parameters_stay_and_async_functions_count() {
    let after = "async def fetch( self,  url, *, retries=3):\n    pass\n";
    let note = definition_notes("net.py", None, after).unwrap();
    assert!(note.contains(r#""new_string":"async def fetch(url, *, retries=3):""#), "{note}");
    let two = "def a(self):\n    pass\n\ndef b(self, x):\n    pass\n";
    let note = definition_notes("m.py", None, two).unwrap();
    assert!(note.starts_with("`a` (line 1), `b` (line 4) takes `self` but they are defined"), "{note}");
    assert!(note.contains(r#""old_string":"def a(self):""#), "{note}");
}

#[test]
fn an_annotated_self_gets_advice_without_a_call() {
    let note = definition_notes("m.py", None, "def size(self: 'Box') -> int:\n    return 1\n").unwrap();
    assert!(note.ends_with("Drop `self` from it, or move it into a class."), "{note}");
}

#[test]
fn methods_names_used_elsewhere_old_functions_and_other_files_are_left_alone() {
    let class = "class Calc:\n    def add(self, a, b):\n        return a + b\n";
    assert_eq!(definition_notes("calc.py", None, class), None);
    let patched = "import requests\n\ndef fake_get(self, url):\n    return 'ok'\n\nrequests.Session.get = fake_get\n";
    assert_eq!(definition_notes("test_net.py", None, patched), None);
    let old = "def legacy(self):\n    pass\n";
    assert_eq!(definition_notes("m.py", Some(old), &format!("{old}\ndef fine():\n    pass\n")), None);
    assert_eq!(definition_notes("notes.txt", None, "def a(self):\n"), None);
    assert_eq!(definition_notes("m.py", None, "def selfish(selfie):\n    pass\n"), None);
    assert_eq!(definition_notes("m.py", None, "class self:\n    pass\n"), None);
}

#[test]
fn a_second_definition_of_a_name_is_named() {
    let before = format!("{TESTS}\ndef test_subtract():\n    assert subtract(5, 3) == 2\n");
    let after = format!("{before}\ndef test_subtract(self):\n    assert subtract(5, 3) == 2\n");
    let note = definition_notes("test_mathx.py", Some(&before), &after).unwrap();
    assert!(note.starts_with("test_mathx.py now defines `test_subtract` (lines 7, 10) more than once"), "{note}");
    // The copy with `self` is named too, as its own definition does not count as a use.
    assert!(note.contains("`test_subtract` (line 10) takes `self`"), "{note}");
    assert!(note.contains(r#""old_string":"def test_subtract(self):""#), "{note}");
    // A file that already defined a name twice is not the change's doing.
    assert_eq!(definition_notes("test_mathx.py", Some(&before.replace("(self)", "()")), &before), None);
    let twice = "def a():\n    pass\n\ndef a():\n    pass\n";
    assert_eq!(definition_notes("m.py", Some(twice), &format!("{twice}\nx = 1\n")), None);
}

#[test]
fn a_def_line_written_twice_gets_no_call() {
    let after = "def run(self):\n    pass\n\ndef run(self):\n    pass\n";
    let note = definition_notes("m.py", None, after).unwrap();
    assert!(note.contains("`run` (lines 1, 4) more than once"), "{note}");
    assert!(!note.contains("arguments"), "{note}");
    assert!(note.contains("Drop `self` from them"), "{note}");
}
