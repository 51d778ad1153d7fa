//! Derive macros for Sightline.
//!
//! This crate holds the procedural half of [`sightline_logging::redact`]: `#[derive(Redact)]`.
//! Use it through the re-export `sightline_logging::redact::Redact` (the derive and the trait
//! share the name, as serde's `Serialize` does); the `derive` feature of `sightline-logging`,
//! on by default, brings it in. The runtime (masking, the keyed hash, the [`tracing`] value)
//! lives in `sightline-logging`, so this crate has nothing to call at run time.
//!
//! [`sightline_logging::redact`]: https://docs.rs/sightline-logging/latest/sightline_logging/redact/
//! [`tracing`]: https://docs.rs/tracing

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned as _;
use syn::{Data, DeriveInput, Fields, LitStr, Path, Token};

/// Makes a struct log itself with per-field redaction rules: implements
/// `sightline_logging::redact::Redact`.
///
/// The struct then prints, through `value.redacted()`, like `#[derive(Debug)]` would, except
/// for the fields that carry a rule:
///
/// | field attribute | printed as | field type needs |
/// |---|---|---|
/// | (none) | its `Debug` | `Debug` |
/// | `#[redact(omit)]` | nothing; the struct ends in `..` | nothing |
/// | `#[redact(mask = "N-M")]` | its `Display` with all but the first `N` and last `M` characters replaced by `*`, quoted: `"+44******0123"`; all `*` when the value has no more than `N + M` characters | `Display` |
/// | `#[redact(hash)]` | `hmac:` and the first 16 hex digits of the HMAC-SHA256 of its `Display`, under the process's key | `Display` |
/// | `#[redact(nested)]` | its own redacted form: the field's type implements `Redact` (derived or by hand) | `Redact` |
///
/// `mask`, `hash` and `nested` also apply to an `Option` of such a type (written `Option<T>`):
/// `Some(..)` around the redacted value, or `None`.
///
/// A field takes at most one rule. A type that lacks the trait its rule needs is a compile
/// error pointing at that field. Works on structs with named fields, tuple structs and unit
/// structs; enums and unions are a compile error.
///
/// # Container attribute
///
/// `#[redact(crate = "path")]` names the path to `sightline_logging` in the generated code.
/// Defaults to `::sightline_logging`; a crate that depends only on the `sightline` facade
/// writes `#[redact(crate = "sightline::logging")]`.
///
/// # Example
///
/// ```
/// use sightline_logging::redact::{self, Redact};
///
/// #[derive(Redact)]
/// struct Card {
///     #[redact(mask = "0-4")]
///     number: String,
/// }
///
/// #[derive(Redact)]
/// struct Customer {
///     name: String,
///     #[redact(mask = "3-4")]
///     phone: String,
///     #[redact(hash)]
///     email: String,
///     #[redact(hash)]
///     referrer: Option<String>,
///     #[redact(nested)]
///     card: Card,
///     #[redact(omit)]
///     password: String,
/// }
///
/// # redact::set_hash_key(b"0123456789abcdef0123456789abcdef").expect("the first key set");
/// let customer = Customer {
///     name: "alice".into(),
///     phone: "+447700900123".into(),
///     email: "alice@example.com".into(),
///     referrer: None,
///     card: Card { number: "4111111111111111".into() },
///     password: "hunter2".into(),
/// };
/// let shown = customer.redacted().to_string();
/// assert_eq!(
///     shown,
///     format!(
///         r#"Customer {{ name: "alice", phone: "+44******0123", email: {}, referrer: None, card: Card {{ number: "************1111" }}, .. }}"#,
///         redact::hash(b"alice@example.com"),
///     ),
/// );
/// assert!(!shown.contains("hunter2") && !shown.contains("alice@example.com"));
///
/// // As a `tracing` field: `%` or `?` or, since `redacted()` is a `tracing::Value`, bare.
/// tracing::info!(customer = customer.redacted(), "signed up");
/// ```
#[proc_macro_derive(Redact, attributes(redact))]
pub fn derive_redact(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What one field prints.
enum Rule {
    Show,
    Omit,
    Mask { keep_start: usize, keep_end: usize },
    Hash,
    Nested,
}

const EXPECTED_RULES: &str = "expected `omit`, `mask = \"N-M\"`, `hash` or `nested`";

/// Folds `error` into `errors`, so that every bad attribute is reported in one build.
fn push_error(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(all) => all.combine(error),
        None => *errors = Some(error),
    }
}

fn path_name(path: &Path) -> String {
    path.to_token_stream()
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Parses `#[redact(crate = "...")]` on the type.
fn container_crate(input: &DeriveInput) -> syn::Result<Path> {
    let mut krate = None;
    let mut errors = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("redact")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("crate") {
                return Err(syn::Error::new_spanned(
                    &meta.path,
                    format!(
                        "unknown container attribute `{}`; expected `crate = \"path\"` \
                         (redaction rules go on fields)",
                        path_name(&meta.path)
                    ),
                ));
            }
            let lit: LitStr = meta.value()?.parse()?;
            let path: Path = lit.parse().map_err(|_| {
                syn::Error::new_spanned(
                    &lit,
                    format!(
                        "`crate = {:?}` is not a path; expected e.g. `crate = \"sightline::logging\"`",
                        lit.value()
                    ),
                )
            })?;
            if krate.is_some() {
                return Err(syn::Error::new_spanned(
                    &meta.path,
                    "`crate` is given twice",
                ));
            }
            krate = Some(path);
            Ok(())
        });
        if let Err(e) = parsed {
            push_error(&mut errors, e);
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(krate.unwrap_or_else(|| syn::parse_quote!(::sightline_logging))),
    }
}

/// Rejects `omit = ..`, `hash(..)` and the like: these rules take no value.
fn no_value(meta: &ParseNestedMeta<'_>, rule: &str) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            &meta.path,
            format!("`{rule}` takes no value; write `#[redact({rule})]`"),
        ))
    }
}

/// Parses the `"N-M"` of `mask = "N-M"`.
fn mask_counts(lit: &LitStr) -> syn::Result<(usize, usize)> {
    let text = lit.value();
    let counts = text.split_once('-').and_then(|(start, end)| {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(start) || !digits(end) {
            return None;
        }
        Some((start.parse().ok()?, end.parse().ok()?))
    });
    counts.ok_or_else(|| {
        syn::Error::new_spanned(
            lit,
            format!(
                "malformed mask {text:?}; expected \"N-M\", the number of characters to keep \
                 at the start and at the end, e.g. `mask = \"3-4\"`"
            ),
        )
    })
}

/// Parses the `#[redact(..)]` attributes of one field.
fn field_rule(field: &syn::Field) -> syn::Result<Rule> {
    let mut rule: Option<(Rule, String)> = None;
    let mut errors = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("redact")) {
        let parsed = attr.parse_nested_meta(|meta| {
            let name = path_name(&meta.path);
            let this = if meta.path.is_ident("omit") {
                no_value(&meta, "omit")?;
                Rule::Omit
            } else if meta.path.is_ident("hash") {
                no_value(&meta, "hash")?;
                Rule::Hash
            } else if meta.path.is_ident("nested") {
                no_value(&meta, "nested")?;
                Rule::Nested
            } else if meta.path.is_ident("mask") {
                if !meta.input.peek(Token![=]) {
                    return Err(syn::Error::new_spanned(
                        &meta.path,
                        "`mask` needs the characters to keep, e.g. `mask = \"3-4\"`",
                    ));
                }
                let lit: LitStr = meta.value()?.parse()?;
                let (keep_start, keep_end) = mask_counts(&lit)?;
                Rule::Mask {
                    keep_start,
                    keep_end,
                }
            } else {
                return Err(syn::Error::new_spanned(
                    &meta.path,
                    format!("unknown redaction rule `{name}`; {EXPECTED_RULES}"),
                ));
            };
            if let Some((_, first)) = &rule {
                return Err(syn::Error::new_spanned(
                    &meta.path,
                    format!(
                        "a field takes one redaction rule, but `{name}` follows `{first}` \
                         on this field"
                    ),
                ));
            }
            rule = Some((this, name));
            Ok(())
        });
        if let Err(e) = parsed {
            push_error(&mut errors, e);
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(rule.map_or(Rule::Show, |(rule, _)| rule)),
    }
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream2, span: proc_macro2::Span) -> TokenStream2 {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// The `T` of a field written `Option<T>` (or `std::option::Option<T>`, `core::option::Option<T>`).
fn option_inner(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let ident = &input.ident;
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            let enum_token = &data.enum_token;
            return Err(syn::Error::new_spanned(
                quote!(#enum_token #ident),
                format!(
                    "`#[derive(Redact)]` works on structs only; `{ident}` is an enum \
                     (implement `Redact` for it by hand)"
                ),
            ));
        }
        Data::Union(data) => {
            let union_token = &data.union_token;
            return Err(syn::Error::new_spanned(
                quote!(#union_token #ident),
                format!("`#[derive(Redact)]` works on structs only; `{ident}` is a union"),
            ));
        }
    };
    let krate = container_crate(input);
    let mut errors = None;
    let mut rules = Vec::with_capacity(fields.len());
    for field in fields {
        match field_rule(field) {
            Ok(rule) => rules.push(rule),
            Err(e) => push_error(&mut errors, e),
        }
    }
    let krate = match (krate, errors) {
        (Ok(krate), None) => krate,
        (Ok(_), Some(e)) => return Err(e),
        (Err(mut e), rest) => {
            if let Some(rest) = rest {
                e.combine(rest);
            }
            return Err(e);
        }
    };

    let mut bounds = Vec::new();
    let mut calls = Vec::new();
    let mut omitted = false;
    for (index, (field, rule)) in fields.iter().zip(&rules).enumerate() {
        let member = match &field.ident {
            Some(name) => quote!(#name),
            None => syn::Index::from(index).into_token_stream(),
        };
        let label = field
            .ident
            .as_ref()
            .map(|name| name.unraw().to_string())
            .into_iter();
        let ty = &field.ty;
        let span = ty.span();
        // `Option<T>` under a rule: the rule applies to the `T` inside.
        let option_inner = match rule {
            Rule::Mask { .. } | Rule::Hash | Rule::Nested => option_inner(ty),
            Rule::Show | Rule::Omit => None,
        };
        let (bound_ty, apply) = match option_inner {
            Some(inner) => (inner, true),
            None => (ty, false),
        };
        let span = if apply { bound_ty.span() } else { span };
        // What the rule makes of a `&T` named `__v`.
        let (redact, needs) = match rule {
            Rule::Omit => {
                omitted = true;
                continue;
            }
            Rule::Show => (quote!(__v), quote_spanned!(span=> ::core::fmt::Debug)),
            Rule::Mask {
                keep_start,
                keep_end,
            } => (
                quote!(#krate::redact::mask(__v, #keep_start, #keep_end)),
                quote_spanned!(span=> ::core::fmt::Display),
            ),
            Rule::Hash => (
                quote!(#krate::redact::hash_display(__v)),
                quote_spanned!(span=> ::core::fmt::Display),
            ),
            Rule::Nested => {
                // The bound carries the field's span, so a type without `Redact` is an error
                // at the field rather than at the derive.
                let spanned_krate = respan(krate.to_token_stream(), span);
                (
                    quote!(#krate::redact::Redacted::new(__v)),
                    quote_spanned!(span=> #spanned_krate::redact::Redact),
                )
            }
        };
        // The value is the macro's own code (the call site's span), so lints about its shape
        // (a closure that could be a path) stay out of the user's crate; the bound above
        // carries the field's span, so a missing trait is reported at the field.
        let value = if apply {
            quote!(&self.#member.as_ref().map(|__v| #redact))
        } else {
            quote!(&{ let __v = &self.#member; #redact })
        };
        let ty = bound_ty;
        // Every field's bound goes in the `where` clause, at the field's span: it makes a
        // missing `Display` one error at that field, and bounds generic fields as needed.
        bounds.push(quote_spanned!(span=> #ty: #needs));
        calls.push(quote!(__sightline_out.field(#(#label,)* #value);));
    }

    let name = ident.unraw().to_string();
    let finish = if omitted {
        quote!(__sightline_out.finish_non_exhaustive())
    } else {
        quote!(__sightline_out.finish())
    };
    let body = match fields {
        Fields::Named(_) => quote! {
            let mut __sightline_out = __sightline_f.debug_struct(#name);
            #(#calls)*
            #finish
        },
        Fields::Unnamed(_) => quote! {
            let mut __sightline_out = __sightline_f.debug_tuple(#name);
            #(#calls)*
            #finish
        },
        Fields::Unit => quote!(__sightline_f.write_str(#name)),
    };

    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream2> = where_clause
        .map(|w| w.predicates.iter().map(ToTokens::to_token_stream).collect())
        .unwrap_or_default();
    predicates.extend(bounds);
    let where_clause = if predicates.is_empty() {
        TokenStream2::new()
    } else {
        quote!(where #(#predicates),*)
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::redact::Redact for #ident #ty_generics #where_clause {
            fn fmt_redacted(&self, __sightline_f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #body
            }
        }
    })
}
