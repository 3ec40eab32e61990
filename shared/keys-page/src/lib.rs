//! The dashboard's API-keys page: `<prolinksqr-api-keys>`, a standard
//! custom element in one ES module (`web/prolinksqr-api-keys.js`, no
//! framework, no build step), and the demo page that hosts it under `make
//! run` (`web/index.html`, `demo.js`, `demo.css`). The files are served as
//! they are in the repository; the dashboard takes the module itself.
//!
//! The page is served on an origin of its own, so every call to the API is
//! cross-origin, under a strict Content-Security-Policy
//! ([`content_security_policy`]): scripts and styles from the page's origin
//! only, no inline script or style, no `eval`, connections to the API only.

/// One file of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The component's module, as the dashboard embeds it.
pub const COMPONENT: &str = include_str!("../web/prolinksqr-api-keys.js");

const INDEX: &str = include_str!("../web/index.html");

/// The files at `path`, the demo page's `/` excepted ([`index`]).
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body) = match path {
        "/prolinksqr-api-keys.js" => ("text/javascript; charset=utf-8", COMPONENT),
        "/demo.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../web/demo.js"),
        ),
        "/demo.css" => ("text/css; charset=utf-8", include_str!("../web/demo.css")),
        "/favicon.svg" => ("image/svg+xml", include_str!("../web/favicon.svg")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

/// The demo page, its component pointed at the API on `api_base`
/// (`http://127.0.0.1:3000`).
pub fn index(api_base: &str) -> String {
    INDEX.replace("{{API_BASE}}", &escape_attribute(api_base))
}

/// The page's Content-Security-Policy: nothing but its own scripts and
/// styles, and calls to the API at `api_base`.
pub fn content_security_policy(api_base: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src {api_base}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn escape_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_api_and_loads_only_its_own_files() {
        let page = index("http://127.0.0.1:3000");
        assert!(page.contains(r#"api-base="http://127.0.0.1:3000""#));
        assert!(!page.contains("{{"));
        for src in [
            "/prolinksqr-api-keys.js",
            "/demo.js",
            "/demo.css",
            "/favicon.svg",
        ] {
            assert!(page.contains(src), "{src}");
            assert!(asset(src).is_some(), "{src}");
        }
        // No inline script or style: every <script> has a src, no style attribute.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script type=\"module\" src=").count()
        );
        assert!(!page.contains("style="));
        assert!(!page.contains("<style"));
        assert_eq!(asset("/"), None);
        assert_eq!(asset("/../Cargo.toml"), None);
        assert_eq!(index("x\"><script>").matches("<script>").count(), 0);
    }

    #[test]
    fn the_policy_allows_nothing_inline_and_only_the_api() {
        let csp = content_security_policy("http://127.0.0.1:3000");
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("style-src 'self';"));
        assert!(csp.contains("connect-src http://127.0.0.1:3000;"));
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn the_component_uses_no_eval_inline_style_or_storage() {
        for banned in [
            "eval(",
            "new Function",
            "localStorage",
            "sessionStorage",
            "indexedDB",
            "document.cookie",
            "console.log",
            "console.info",
            "console.warn",
            "console.error",
            "console.debug",
            "history.pushState",
            "history.replaceState",
            ".style.",
            "setAttribute(\"style\"",
        ] {
            assert!(!COMPONENT.contains(banned), "{banned}");
        }
        assert!(COMPONENT.contains("adoptedStyleSheets"));
        assert!(COMPONENT.contains("customElements.define(\"prolinksqr-api-keys\""));
    }
}
