//! A scripted browser for the sign-in tests: a cookie jar (by host and
//! port, honouring `Max-Age=0`), navigation that follows redirects, and the
//! provider's development login and consent forms filled in as a person
//! would. What it sends is what a browser's navigation sends (`Accept:
//! text/html`, `Sec-Fetch-Mode: navigate`), so tokengate treats it as one.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;

use super::{Reply, http1, send};

/// Cookies by (host:port, name).
#[derive(Default, Clone)]
pub struct Browser {
    pub jar: BTreeMap<(String, String), String>,
    /// Every URL navigated to, in order (to assert on what the user saw).
    pub visited: Vec<String>,
    /// Every `Set-Cookie` received, with the URL that set it.
    pub set_cookies: Vec<(String, String)>,
    /// Every answer's headers, with its URL.
    pub answers: Vec<(String, http::HeaderMap)>,
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or("").to_owned()
}

fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap();
    let host = rest.split('/').next().unwrap();
    format!("{scheme}://{host}{location}")
}

impl Browser {
    /// The cookie `name` held for `host` (host:port).
    pub fn cookie(&self, host: &str, name: &str) -> Option<&str> {
        self.jar.get(&(host.to_owned(), name.to_owned())).map(String::as_str)
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let host = host_of(url);
        let pairs: Vec<String> = self
            .jar
            .iter()
            .filter(|((h, _), _)| *h == host)
            .map(|((_, n), v)| format!("{n}={v}"))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store(&mut self, url: &str, reply: &Reply) {
        let host = host_of(url);
        self.answers.push((url.to_owned(), reply.headers.clone()));
        for set in reply.headers.get_all(http::header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            self.set_cookies.push((url.to_owned(), set.to_owned()));
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let gone = attrs.to_ascii_lowercase().contains("max-age=0") || attrs.contains("1970");
            let key = (host.clone(), name.trim().to_owned());
            if gone || value.is_empty() {
                self.jar.remove(&key);
            } else {
                self.jar.insert(key, value.to_owned());
            }
        }
    }

    /// One request with the jar's cookies and `headers`; stores what it sets.
    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(c) = self.cookie_header(url) {
            b = b.header("cookie", c);
        }
        let body = match form {
            Some(fields) => {
                b = b.header("content-type", "application/x-www-form-urlencoded");
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter())
                    .finish()
            }
            None => String::new(),
        };
        let reply = send(&http1(), b.body(Full::new(Bytes::from(body))).unwrap()).await;
        self.store(url, &reply);
        reply
    }

    /// A script's GET of `url` (`Accept: application/json`) with the cookies.
    pub async fn fetch(&mut self, url: &str) -> Reply {
        self.request(Method::GET, url, &[("accept", "application/json")], None)
            .await
    }

    /// A navigation to `url` (typed, or followed) and its redirects; at the
    /// provider's login and consent pages, submits them as `login`. Returns
    /// the first answer that is neither a redirect nor a provider form.
    pub async fn navigate(&mut self, url: &str, login: &str) -> Reply {
        self.navigate_until(url, login, None).await
    }

    /// [`Browser::navigate`], stopping at (and returning) a redirect to a
    /// URL that starts with `stop` (an attacker capturing a callback).
    pub async fn navigate_until(&mut self, url: &str, login: &str, stop: Option<&str>) -> Reply {
        let mut url = url.to_owned();
        let mut method = Method::GET;
        let mut form: Vec<(String, String)> = Vec::new();
        let mut site = "none";
        for _ in 0..20 {
            self.visited.push(url.clone());
            let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let headers = [
                ("accept", "text/html,application/xhtml+xml"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-site", site),
            ];
            let reply = self
                .request(
                    method.clone(),
                    &url,
                    &headers,
                    (method == Method::POST).then_some(&fields[..]),
                )
                .await;
            if reply.status.is_redirection() {
                let location = reply.headers["location"].to_str().unwrap();
                let next = resolve(&url, location);
                if stop.is_some_and(|s| next.starts_with(s)) {
                    return reply;
                }
                url = next;
                method = Method::GET;
                form.clear();
                site = "same-site";
                continue;
            }
            if reply.status == StatusCode::OK
                && let Some((action, fields)) = provider_form(&reply.body)
            {
                form = fields
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match k.as_str() {
                            "login" => login.to_owned(),
                            "password" => "any password".to_owned(),
                            _ => v,
                        };
                        (k, v)
                    })
                    .collect();
                url = resolve(&url, &action);
                method = Method::POST;
                site = "same-origin";
                continue;
            }
            return reply;
        }
        panic!("more than 20 steps: {:?}", self.visited);
    }
}

/// The action and fields of the provider's development login or consent
/// form (`prompt` hidden input), if the page is one.
fn provider_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    if !html.contains(r#"name="prompt""#) {
        return None;
    }
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&"))
    };
    let form_tag = &html[html.find("<form")?..];
    let action = attr(&form_tag[..form_tag.find('>')?], "action")?;
    let mut fields = Vec::new();
    for part in form_tag.split("<input").skip(1) {
        let tag = &part[..part.find('>')?];
        if let Some(name) = attr(tag, "name") {
            fields.push((name, attr(tag, "value").unwrap_or_default()));
        }
    }
    Some((action, fields))
}
