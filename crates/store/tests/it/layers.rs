//! The store's layering (src/lib.rs, ARCHITECTURE.md): each folder of `src/` is a layer, and
//! no file imports a module of a layer above its own, nor of the layer beside it. Read from
//! the sources' paths (`crate::x`, `crate::{x, y}`, `super::x`), whatever the form.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The layers from the bottom up; two layers of one rank may not import each other.
const LAYERS: &[(&str, u8)] = &[
    ("base", 0),
    ("records", 1),
    ("replica", 2),
    ("reports", 2),
    ("lifecycle", 3),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Which layer each module name of the crate belongs to (the layer folders included).
fn module_layers() -> HashMap<String, &'static str> {
    let mut map = HashMap::new();
    for (layer, _) in LAYERS {
        map.insert(layer.to_string(), *layer);
        for file in rust_files(&src().join(layer)) {
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            if stem != "mod" {
                assert!(
                    map.insert(stem.clone(), *layer).is_none() || stem == *layer,
                    "two modules named {stem}: the layering test could not tell them apart"
                );
            }
        }
    }
    map
}

/// The first segments of the paths a source names after `crate::` or `super::`.
fn named_modules(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["crate::", "super::"] {
        let mut rest = source;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // A group: every top-level item's first segment.
                let mut depth = 0;
                let mut item = String::new();
                for ch in group.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(first_segment(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(ch);
                }
                names.push(first_segment(&item));
            } else {
                names.push(first_segment(rest));
            }
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn rank(layer: &str) -> u8 {
    LAYERS.iter().find(|(l, _)| *l == layer).unwrap().1
}

/// The offending imports of a source in `layer`: modules of a higher layer, or of the other
/// layer of the same rank.
fn upward(layer: &str, source: &str, layers: &HashMap<String, &'static str>) -> Vec<String> {
    named_modules(source)
        .into_iter()
        .filter_map(|name| {
            let target = layers.get(&name)?;
            let bad =
                rank(target) > rank(layer) || (rank(target) == rank(layer) && *target != layer);
            bad.then(|| format!("{name} ({target})"))
        })
        .collect()
}

#[test]
fn no_layer_imports_one_above_it() {
    let layers = module_layers();
    let mut problems = Vec::new();
    let mut files = 0;
    for (layer, _) in LAYERS {
        for file in rust_files(&src().join(layer)) {
            files += 1;
            let source = std::fs::read_to_string(&file).unwrap();
            for bad in upward(layer, &source, &layers) {
                problems.push(format!(
                    "{} ({layer}) imports {bad}",
                    file.strip_prefix(src()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        files > 20,
        "the layer folders hold the store's modules ({files} files)"
    );
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_import_in_any_form() {
    let layers = module_layers();
    // Each of these would be refused in the core.
    for source in [
        "use crate::tips::TipInput;",
        "use crate::{changes::Writer, report::Figure};",
        "let n = crate::replica::record_unit(c, e, i);",
        "use crate::lifecycle::demo;",
        "use crate::{sql::{ts, parse_ts}, roster};",
    ] {
        assert!(
            !upward("base", source, &layers).is_empty(),
            "not seen: {source}"
        );
    }
    assert!(upward("base", "use crate::{changes::Writer, sql::ts};", &layers).is_empty());
    // Side by side: the reports may not read the replica.
    assert_eq!(
        upward("reports", "use crate::replica::Take;", &layers),
        vec!["replica (replica)".to_string()]
    );
    assert!(upward("reports", "use crate::tips::Tip;", &layers).is_empty());
}
