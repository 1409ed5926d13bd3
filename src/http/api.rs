//! One route table per listener: each entry is a method, a path, its OpenAPI operation
//! and its endpoint, and both the router and the `/openapi.json` document are built from
//! the table, so they cannot disagree. `/docs` renders the document with Swagger UI,
//! whose assets are built into the binary (`swagger-ui/`, from the npm package
//! `swagger-ui-dist` with its license), so the page works offline.
//!
//! The document is assembled from our own entries rather than derived by
//! `poem-openapi`: the wire formats are the reference services' (FastAPI's), which typed
//! derives would not reproduce, and the handlers read their input through
//! [`super::Json`] with the listener's [`super::Dialect`].

use super::harden;
use poem::endpoint::{make_sync, BoxEndpoint};
use poem::http::{Method, StatusCode};
use poem::{Endpoint, EndpointExt, Response, Route, RouteMethod};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One OpenAPI operation, built up by its methods.
#[derive(Clone, Debug)]
pub struct Op(Value);

impl Op {
    pub fn new(summary: &str) -> Op {
        Op(json!({"summary": summary, "parameters": [], "responses": {}}))
    }

    /// The 200 answer: JSON with `schema`.
    pub fn ok(self, schema: Value) -> Op {
        self.response(
            200,
            json!({"description": "success", "content": {"application/json": {"schema": schema}}}),
        )
    }

    /// Another answer (`code` and its OpenAPI response object).
    pub fn response(mut self, code: u16, response: Value) -> Op {
        self.0["responses"][code.to_string()] = response;
        self
    }

    /// Error answers, each `{"detail": …}`.
    pub fn errors(mut self, codes: &[u16]) -> Op {
        for code in codes {
            self = self.response(
                *code,
                json!({"description": "error", "content": {"application/json": {"schema": schema_ref("Error")}}}),
            );
        }
        self
    }

    pub fn params(mut self, params: Vec<Value>) -> Op {
        self.0["parameters"] = Value::Array(params);
        self
    }

    /// A required JSON request body with `schema`.
    pub fn body(mut self, schema: Value) -> Op {
        self.0["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
        self
    }

    /// Who may call it: `role` (`x-role`) and the security requirements that prove it.
    pub fn security(mut self, role: &str, requirements: Value) -> Op {
        self.0["security"] = requirements;
        self.0["x-role"] = json!(role);
        self
    }
}

/// An optional integer query parameter, clamped to `min..=max`.
pub fn query_int(name: &str, default: i64, min: i64, max: i64) -> Value {
    json!({"name": name, "in": "query", "required": false,
        "schema": {"type": "integer", "default": default, "minimum": min, "maximum": max},
        "description": "clamped to the range"})
}

/// An optional query parameter with `schema`.
pub fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

pub fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

/// `#/components/schemas/<name>`.
pub fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

pub fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

struct Entry {
    method: Method,
    path: &'static str,
    op: Op,
    endpoint: BoxEndpoint<'static>,
}

/// A listener's route table.
pub struct Api {
    info: Value,
    entries: Vec<Entry>,
    components: Value,
}

impl Api {
    /// A table titled `title`; `description` heads the document. It serves
    /// `/openapi.json` and `/docs` itself.
    pub fn new(title: &str, description: &str) -> Api {
        Api {
            info: json!({"title": title, "version": env!("CARGO_PKG_VERSION"), "description": description}),
            entries: Vec::new(),
            components: json!({"schemas": {}}),
        }
    }

    /// Serve `endpoint` at `method path` (`{name}` marks a path parameter), documented
    /// by `op`.
    pub fn route(
        mut self,
        method: Method,
        path: &'static str,
        op: Op,
        endpoint: impl Endpoint + 'static,
    ) -> Api {
        let clash = self
            .entries
            .iter()
            .any(|e| e.method == method && e.path == path);
        assert!(!clash, "{method} {path} is in the route table twice");
        self.entries.push(Entry {
            method,
            path,
            op,
            endpoint: endpoint.map_to_response().boxed(),
        });
        self
    }

    pub fn get(self, path: &'static str, op: Op, endpoint: impl Endpoint + 'static) -> Api {
        self.route(Method::GET, path, op, endpoint)
    }

    pub fn post(self, path: &'static str, op: Op, endpoint: impl Endpoint + 'static) -> Api {
        self.route(Method::POST, path, op, endpoint)
    }

    /// Serve `other`'s routes too (another part of the daemon on the same listener); its
    /// endpoints carry their own state. Its title and components are dropped.
    pub fn merge(mut self, other: Api) -> Api {
        for e in other.entries {
            let clash = self
                .entries
                .iter()
                .any(|x| x.method == e.method && x.path == e.path);
            assert!(
                !clash,
                "{} {} is in the route table twice",
                e.method, e.path
            );
            self.entries.push(e);
        }
        self
    }

    /// The document's `components` (schemas, security schemes); the `Error` schema of
    /// every listener is added to it.
    pub fn components(mut self, components: Value) -> Api {
        self.components = components;
        self
    }

    /// The OpenAPI 3 document of the table, `/openapi.json` and `/docs` included.
    pub fn document(&self) -> Value {
        let mut paths = Map::new();
        let own = [
            (Method::GET, "/openapi.json", doc_op()),
            (Method::GET, "/docs", docs_op()),
            (Method::GET, DOCS_CSS, asset_op("Swagger UI's stylesheet")),
            (Method::GET, DOCS_JS, asset_op("Swagger UI's script")),
        ];
        let all = self
            .entries
            .iter()
            .map(|e| (&e.method, e.path, &e.op))
            .chain(own.iter().map(|(m, p, o)| (m, *p, o)));
        for (method, path, op) in all {
            let ops = paths.entry(path.to_string()).or_insert_with(|| json!({}));
            ops[method.as_str().to_ascii_lowercase()] = op.0.clone();
        }
        let mut components = self.components.clone();
        // A 422's detail is FastAPI's list of validation errors.
        let invalid = json!({"type": "object", "required": ["loc", "msg", "type"], "properties": {
            "loc": array(json!({})), "msg": {"type": "string"}, "type": {"type": "string"}}});
        components["schemas"]["Error"] = json!({"type": "object", "required": ["detail"],
            "properties": {"detail": {"oneOf": [{"type": "string"}, array(invalid)]}}});
        json!({"openapi": "3.0.3", "info": self.info, "paths": paths, "components": components})
    }

    /// The router: every entry, `/openapi.json` and `/docs`, with `data` attached, inside
    /// the shared guard ([`harden`]) with a `max_body_bytes` limit.
    pub fn into_endpoint<T: Clone + Send + Sync + 'static>(
        self,
        data: T,
        max_body_bytes: usize,
    ) -> BoxEndpoint<'static> {
        let doc = serde_json::to_vec(&self.document()).unwrap_or_default();
        let page = docs_page(self.info["title"].as_str().unwrap_or_default());
        let mut by_path: BTreeMap<&'static str, RouteMethod> = BTreeMap::new();
        for e in self.entries {
            let methods = by_path.remove(e.path).unwrap_or_default();
            by_path.insert(e.path, methods.method(e.method, e.endpoint));
        }
        let mut route = Route::new()
            .at("/openapi.json", fixed("application/json", doc))
            .at(
                "/docs",
                fixed("text/html; charset=utf-8", page.into_bytes()),
            )
            .at(
                DOCS_CSS,
                fixed("text/css; charset=utf-8", SWAGGER_CSS.to_vec()),
            )
            .at(
                DOCS_JS,
                fixed("text/javascript; charset=utf-8", SWAGGER_JS.to_vec()),
            );
        for (path, methods) in by_path {
            route = route.at(router_path(path), methods);
        }
        harden(route.data(data), max_body_bytes)
    }
}

/// A GET endpoint that always answers `body` as `content_type`.
fn fixed(content_type: &'static str, body: Vec<u8>) -> RouteMethod {
    poem::get(make_sync(move |_| {
        Response::builder()
            .content_type(content_type)
            .body(body.clone())
    }))
}

/// `/a/{b}` (OpenAPI) as poem's `/a/:b`.
fn router_path(path: &str) -> String {
    path.split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

fn doc_op() -> Op {
    Op::new("This document (OpenAPI 3)").ok(json!({"type": "object"}))
}

fn docs_op() -> Op {
    Op::new("Interactive page for this document (Swagger UI)").response(
        200,
        json!({"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}),
    )
}

fn asset_op(summary: &str) -> Op {
    Op::new(summary).response(200, json!({"description": "a static file of /docs"}))
}

/// Where `/docs` loads Swagger UI from: this listener, never a CDN (the appliance is often
/// offline).
const DOCS_CSS: &str = "/docs/swagger-ui.css";
const DOCS_JS: &str = "/docs/swagger-ui-bundle.js";
/// swagger-ui-dist 5.36.0 (Apache-2.0; `swagger-ui/LICENSE`, `NOTICE`).
const SWAGGER_CSS: &[u8] = include_bytes!("swagger-ui/swagger-ui.css");
const SWAGGER_JS: &[u8] = include_bytes!("swagger-ui/swagger-ui-bundle.js");

/// Swagger UI over `./openapi.json`, from the assets above; the page also links the raw
/// document. `validatorUrl: null` keeps Swagger UI from asking an online validator.
fn docs_page(title: &str) -> String {
    format!(
        r##"<!doctype html>
<html><head><meta charset="utf-8"><title>{title} — API</title>
<link rel="stylesheet" href="{DOCS_CSS}">
</head><body>
<p style="font-family:sans-serif">The document itself: <a href="openapi.json">openapi.json</a></p>
<div id="swagger-ui"></div>
<script src="{DOCS_JS}"></script>
<script>SwaggerUIBundle({{url: "openapi.json", dom_id: "#swagger-ui", validatorUrl: null}});</script>
</body></html>
"##
    )
}

/// The methods and paths a document describes, as `(method, path)` with lowercase
/// methods — for the checks that compare a document with what a listener serves.
pub fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .into_iter()
                .flatten()
                .map(move |(m, _)| (m.clone(), path.clone()))
        })
        .collect();
    out.sort();
    out
}

/// Whether an answer is the router's own "no such route" or "wrong method" (a handler's
/// 404 names what it did not find).
pub fn is_unrouted(status: StatusCode, detail: Option<&str>) -> bool {
    matches!(
        (status, detail),
        (StatusCode::NOT_FOUND, Some("Not Found"))
            | (StatusCode::METHOD_NOT_ALLOWED, Some("Method Not Allowed"))
    )
}

/// `path` with every `{param}` replaced by `value`, to call a documented route.
pub fn sample_path(path: &str, value: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { value } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::ApiError;
    use poem::{handler, Request};

    #[handler]
    fn hello() -> &'static str {
        "hi"
    }

    #[handler]
    fn missing() -> poem::Result<()> {
        Err(ApiError::not_found("no such thing").into())
    }

    fn table() -> Api {
        Api::new("t", "test")
            .get("/a", Op::new("a"), hello)
            .post("/a", Op::new("a"), hello)
            .get("/b/{id}", Op::new("b"), missing)
            .post("/c/{x}/{y}", Op::new("c"), hello)
    }

    async fn answer(ep: &BoxEndpoint<'static>, method: &str, path: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method.to_ascii_uppercase().parse().unwrap())
            .uri_str(path)
            .finish();
        let resp = ep.call(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().into_vec().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn router_and_document_come_from_one_table() {
        let doc = table().document();
        let ep = table().into_endpoint((), 1024);
        let listed = documented(&doc);
        assert_eq!(listed.len(), 8, "{listed:?}");
        for (method, path) in &listed {
            let (status, body) = answer(&ep, method, &sample_path(path, "7")).await;
            assert!(
                !is_unrouted(status, body["detail"].as_str()),
                "{method} {path}: {status}"
            );
        }
        // A handler's own 404 is not the router's.
        let (status, body) = answer(&ep, "get", "/b/7").await;
        assert_eq!(
            (status.as_u16(), body["detail"].as_str()),
            (404, Some("no such thing"))
        );
        let (status, body) = answer(&ep, "delete", "/a").await;
        assert!(is_unrouted(status, body["detail"].as_str()));
        let (status, _) = answer(&ep, "get", "/openapi.json").await;
        assert_eq!(status, 200);
        assert!(doc["components"]["schemas"]["Error"].is_object());
    }

    #[test]
    #[should_panic(expected = "twice")]
    fn a_route_is_listed_once() {
        let _ = table().get("/a", Op::new("again"), hello);
    }

    #[test]
    fn paths_translate() {
        assert_eq!(router_path("/c/{x}/{y}"), "/c/:x/:y");
        assert_eq!(sample_path("/c/{x}/d", "1"), "/c/1/d");
    }
}
