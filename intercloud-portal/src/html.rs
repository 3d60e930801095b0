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

/// The stylesheet served at `/static/portal.css`.
pub const STYLESHEET: &str = include_str!("../assets/portal.css");

/// The progress page's script served at `/static/progress.js` (no inline script, so
/// the Content-Security-Policy can forbid them).
pub const PROGRESS_JS: &str = include_str!("../assets/progress.js");

/// Headers on every response: a strict Content-Security-Policy (scripts and styles
/// from this origin only, no framing, forms post here only), no MIME sniffing, no
/// referrer to other sites, no caching of pages.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
];

/// The hidden CSRF field every form carries.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(csrf)
    )
}

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
<link rel=\"stylesheet\" href=\"/static/portal.css\"></head>\n<body><header><b>InterCloud</b> {nav}</header>\n<main><h1>{t}</h1>\n{body}\n</main></body></html>\n",
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
