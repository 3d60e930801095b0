//! HTML escaping and the page layout. Pure functions.

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(csrf)
    )
}

const STYLE: &str =
    "body{font-family:sans-serif;margin:0}header{background:#234;color:#fff;padding:.5em 1em}\
header a{color:#fff;margin-right:1em}main{padding:1em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.2em .5em}.err{color:#a00}.ok{color:#070}\
form.inline{display:inline}fieldset{margin-bottom:1em}#log{font-family:monospace;white-space:pre}";

/// A whole page: navigation for `user` (with a logout form), then `body`.
pub fn page(title: &str, user: Option<&str>, csrf: &str, body: &str) -> String {
    let nav = match user {
        Some(u) => format!(
            r#"<a href="/clusters">Clusters</a><a href="/request">New cluster</a><a href="/credentials">Cloud keys</a>
<span>signed in as <b id="user">{}</b></span>
<form class="inline" method="post" action="/logout">{}<button id="logout">Log out</button></form>"#,
            escape(u),
            csrf_field(csrf)
        ),
        None => r#"<a href="/login">Log in</a>"#.to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · InterCloud portal</title>\
<style>{STYLE}</style></head>\n<body><header><b>InterCloud</b> {nav}</header>\n<main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn page_has_logout_form_with_csrf_only_when_signed_in() {
        let p = page("T", Some("al<ice"), "tok", "body");
        assert!(p.contains("al&lt;ice") && p.contains(r#"name="csrf" value="tok""#));
        assert!(!page("T", None, "tok", "").contains("logout"));
    }
}
