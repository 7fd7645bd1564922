//! The window's IPC contract, declared once: the `#[tauri::command]` functions of
//! `src/commands.rs`. This test reads them and
//! - writes `ui/src/lib/bindings/commands.ts`, one typed function per command (argument
//!   names as Tauri passes them, camelCase; types by their ts-rs names), which `api.ts`
//!   builds on; `scripts/test.sh` fails when the committed file differs;
//! - checks that the handler list in `src/lib.rs` names exactly these commands;
//! - checks that every type a command names has its generated binding.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::{FnArg, GenericArgument, Item, Pat, PathArguments, ReturnType, Type};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed bindings, where every type a command names must have its file.
fn bindings_dir() -> PathBuf {
    manifest().join("../ui/src/lib/bindings")
}

/// Where generated TypeScript goes: ts-rs's directory (`.cargo/config.toml`, or the
/// scratch directory `scripts/test.sh` compares with the committed files).
fn export_dir() -> PathBuf {
    std::env::var_os("TS_RS_EXPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(bindings_dir)
}

/// Arguments Tauri fills in itself, never sent by the window.
const INJECTED: &[&str] = &["State", "AppHandle", "Window", "WebviewWindow"];

struct Command {
    name: String,
    docs: Vec<String>,
    args: Vec<(String, String)>,
    ret: String,
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn generic(args: &PathArguments) -> Vec<&Type> {
    match args {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The TypeScript of a Rust type as serde and ts-rs write it; named types are collected.
fn ts(ty: &Type, named: &mut BTreeSet<String>) -> String {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => "void".into(),
        Type::Reference(r) => ts(&r.elem, named),
        Type::Path(p) => {
            let last = p.path.segments.last().unwrap();
            let name = last.ident.to_string();
            let inner = generic(&last.arguments);
            match name.as_str() {
                "String" | "str" | "NaiveDate" => "string".into(),
                "bool" => "boolean".into(),
                "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" | "f64" => "number".into(),
                "Value" => "unknown".into(),
                // Raw bytes answered by `tauri::ipc::Response`.
                "Response" => "ArrayBuffer".into(),
                "Option" => format!("{} | null", ts(inner[0], named)),
                "Vec" => {
                    let item = ts(inner[0], named);
                    if item.contains(' ') {
                        format!("({item})[]")
                    } else {
                        format!("{item}[]")
                    }
                }
                "Res" | "Result" => ts(inner[0], named),
                _ => {
                    named.insert(name.clone());
                    name
                }
            }
        }
        other => panic!("no TypeScript for {}", quote_type(other)),
    }
}

fn quote_type(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect::<Vec<_>>()
            .join("::"),
        _ => "a type".into(),
    }
}

fn is_injected(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => {
            INJECTED.contains(&p.path.segments.last().unwrap().ident.to_string().as_str())
        }
        _ => false,
    }
}

fn docs(attrs: &[syn::Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn commands(named: &mut BTreeSet<String>) -> Vec<Command> {
    let source = std::fs::read_to_string(manifest().join("src/commands.rs")).unwrap();
    let file = syn::parse_file(&source).unwrap();
    let mut out = Vec::new();
    for item in file.items {
        let Item::Fn(f) = item else { continue };
        let is_command = f.attrs.iter().any(|a| {
            let segs: Vec<String> = a
                .path()
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            segs == ["tauri", "command"]
        });
        if !is_command {
            continue;
        }
        let mut args = Vec::new();
        for input in &f.sig.inputs {
            let FnArg::Typed(t) = input else {
                panic!("a command takes no self")
            };
            if is_injected(&t.ty) {
                continue;
            }
            let Pat::Ident(id) = &*t.pat else {
                panic!("{}: arguments are plain names", f.sig.ident)
            };
            args.push((id.ident.to_string(), ts(&t.ty, named)));
        }
        let ret = match &f.sig.output {
            ReturnType::Default => "void".into(),
            ReturnType::Type(_, ty) => ts(ty, named),
        };
        out.push(Command {
            name: f.sig.ident.to_string(),
            docs: docs(&f.attrs),
            args,
            ret,
        });
    }
    out
}

/// Words TypeScript will not take as a parameter's name.
const RESERVED: &[&str] = &["new", "delete", "default", "function", "class", "var", "in"];

fn render(commands: &[Command], named: &BTreeSet<String>) -> String {
    let mut s = String::from(
        "// Generated from src-tauri/src/commands.rs by the test src-tauri/tests/ipc.rs: do not edit.\n\
         // One typed function per Tauri command; api.ts gives it the invoker.\n",
    );
    for n in named {
        s.push_str(&format!("import type {{ {n} }} from './{n}';\n"));
    }
    s.push_str(
        "\nexport type Invoke = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;\n\n\
         export const COMMANDS = [\n",
    );
    for c in commands {
        s.push_str(&format!("  '{}',\n", c.name));
    }
    s.push_str("] as const;\n\nexport function commands(invoke: Invoke) {\n  return {\n");
    for c in commands {
        if !c.docs.is_empty() {
            s.push_str(&format!("    /** {} */\n", c.docs.join(" ")));
        }
        let params: Vec<String> = c
            .args
            .iter()
            .map(|(n, t)| {
                let js = camel(n);
                let param = if RESERVED.contains(&js.as_str()) {
                    format!("{js}_")
                } else {
                    js
                };
                format!("{param}: {t}")
            })
            .collect();
        let fields: Vec<String> = c
            .args
            .iter()
            .map(|(n, _)| {
                let js = camel(n);
                if RESERVED.contains(&js.as_str()) {
                    format!("{js}: {js}_")
                } else {
                    js
                }
            })
            .collect();
        let args = if fields.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", fields.join(", "))
        };
        s.push_str(&format!(
            "    {}: ({}) => invoke<{}>('{}'{}),\n",
            camel(&c.name),
            params.join(", "),
            c.ret,
            c.name,
            args
        ));
    }
    s.push_str("  };\n}\n");
    s
}

fn handler_list() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(manifest().join("src/lib.rs")).unwrap();
    let start =
        lib.find("generate_handler![").expect("the handler list") + "generate_handler![".len();
    let end = start + lib[start..].find(']').unwrap();
    lib[start..end]
        .split(',')
        .map(|s| s.trim().trim_start_matches("commands::").to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn ipc_contract_is_generated_from_the_commands() {
    let mut named = BTreeSet::new();
    let commands = commands(&mut named);
    assert!(commands.len() > 40, "commands read: {}", commands.len());

    let declared: BTreeSet<String> = commands.iter().map(|c| c.name.clone()).collect();
    let handled = handler_list();
    assert_eq!(
        declared, handled,
        "the handler list in src/lib.rs must name exactly the #[tauri::command] functions"
    );

    for n in &named {
        assert!(
            bindings_dir().join(format!("{n}.ts")).exists(),
            "{n} crosses the IPC but has no generated binding (derive ts_rs::TS with #[ts(export)])"
        );
    }

    let text = render(&commands, &named);
    let dir = export_dir();
    std::fs::create_dir_all(&dir).unwrap();
    write_if_changed(&dir.join("commands.ts"), &text);
}

#[test]
fn reserved_words_and_options_are_rendered_as_typescript_takes_them() {
    let mut named = BTreeSet::new();
    let ty: Type = syn::parse_str("Option<Vec<NewAttachment>>").unwrap();
    assert_eq!(ts(&ty, &mut named), "NewAttachment[] | null");
    let ty: Type = syn::parse_str("Vec<Option<String>>").unwrap();
    assert_eq!(ts(&ty, &mut named), "(string | null)[]");
    let ty: Type = syn::parse_str("Res<()>").unwrap();
    assert_eq!(ts(&ty, &mut named), "void");
    let c = Command {
        name: "change_password".into(),
        docs: vec![],
        args: vec![
            ("old".into(), "string".into()),
            ("new".into(), "string".into()),
        ],
        ret: "StationStatus".into(),
    };
    let text = render(&[c], &named);
    assert!(
        text.contains("changePassword: (old: string, new_: string) => invoke<StationStatus>('change_password', { old, new: new_ }),"),
        "{text}"
    );
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}
