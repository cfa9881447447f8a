//! Form bodies in Stripe's bracket dialect (`metadata[key]=value`, `expand[]=…`), built in order.

/// A form body in Stripe's bracket dialect, built in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds one field.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((key.into(), value.into()));
        self
    }
    /// Adds a field when the value is present.
    pub fn push_opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.push(key, v);
        }
        self
    }
    /// No fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every parameter and its value as sent, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds every field of `other`, after these.
    pub fn extend(&mut self, other: &Form) -> &mut Self {
        self.0.extend(other.0.iter().cloned());
        self
    }

    /// Every parameter name as sent, in order (`metadata[a]`, `images[0]`, …).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The top-level parameter names, in order, once each (`metadata[a]` → `metadata`).
    pub fn field_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (key, _) in &self.0 {
            let name = key.split('[').next().unwrap_or(key);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
    /// `application/x-www-form-urlencoded`, brackets kept literal as the official SDKs send them.
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    encode_component(k, true),
                    encode_component(v, false)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// One key or value, percent-encoded as Stripe's SDKs send it (`keep_brackets` for keys).
pub fn encode_component(s: &str, keep_brackets: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'[' | b']' if keep_brackets => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
