//! Stripe's `application/x-www-form-urlencoded` dialect: bracket nesting (`metadata[color]=red`,
//! `images[0]=…`, `expand[]=…`) parsed into a tree, and typed accessors that report errors the way
//! Stripe does (unknown, missing and ill-typed parameters name the offending `param`).

use std::collections::BTreeMap;

use crate::error::ApiError;

/// One node of a parsed form: a scalar string or a nested map. Lists are maps whose keys are
/// indexes (`images[0]`) or appended positions (`expand[]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A leaf value, always a string on the wire.
    Str(String),
    /// A bracketed group; keys keep their insertion order by a numeric prefix for `[]` appends.
    Map(BTreeMap<String, Param>),
}

/// Parses a whole form body or query string into a map of parameters.
pub fn parse(raw: &[u8]) -> Result<BTreeMap<String, Param>, ApiError> {
    let mut root = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(raw) {
        let segments = split_key(&key).ok_or_else(|| {
            ApiError::invalid(
                format!("Invalid parameter name: {key}"),
                Some(key.to_string()),
            )
        })?;
        insert(&mut root, &segments, value.into_owned(), &key)?;
    }
    Ok(root)
}

/// `a[b][][c]` → `["a", "b", "", "c"]`; `None` when the brackets do not balance.
fn split_key(key: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut out = vec![head.to_string()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        out.push(inner[..close].to_string());
        rest = &inner[close + 1..];
    }
    Some(out)
}

fn insert(
    map: &mut BTreeMap<String, Param>,
    segments: &[String],
    value: String,
    full_key: &str,
) -> Result<(), ApiError> {
    let mut segment = segments[0].clone();
    if segment.is_empty() {
        // `[]` appends: give it the next free position, zero-padded so the map keeps order.
        segment = format!("{:08}", map.len());
    }
    if segments.len() == 1 {
        map.insert(segment, Param::Str(value));
        return Ok(());
    }
    let entry = map
        .entry(segment)
        .or_insert_with(|| Param::Map(BTreeMap::new()));
    match entry {
        Param::Map(inner) => insert(inner, &segments[1..], value, full_key),
        Param::Str(_) => Err(ApiError::invalid(
            format!("Invalid parameter: {full_key} mixes a value and a hash"),
            Some(full_key.to_string()),
        )),
    }
}

/// Typed, consuming access to one level of parameters. Every accessor removes what it reads, so
/// [`Params::finish`] can reject whatever is left as an unknown parameter, as Stripe does.
pub struct Params {
    map: BTreeMap<String, Param>,
    prefix: String,
}

impl Params {
    /// Wraps the top level of a parsed form.
    pub fn new(map: BTreeMap<String, Param>) -> Self {
        Self {
            map,
            prefix: String::new(),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}[{key}]", self.prefix)
        }
    }

    /// The keys sent at this level (a hash keyed by the caller, such as `currency_options`).
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    /// True when the key was sent at all (even empty).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// True when the key was sent as a hash (`key[field]=…`) rather than a scalar.
    pub fn is_hash(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Param::Map(_)))
    }

    /// A scalar string parameter.
    pub fn string(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Param::Str(s)) => Ok(Some(s)),
            Some(Param::Map(_)) => Err(ApiError::invalid(
                format!(
                    "Invalid string: {{...}}; {} must be a string",
                    self.name(key)
                ),
                Some(self.name(key)),
            )),
        }
    }

    /// A string that Stripe lets you clear by sending an empty value: `Some(None)` means "unset".
    pub fn nullable_string(&mut self, key: &str) -> Result<Option<Option<String>>, ApiError> {
        Ok(self
            .string(key)?
            .map(|s| if s.is_empty() { None } else { Some(s) }))
    }

    /// A required scalar string.
    pub fn required_string(&mut self, key: &str) -> Result<String, ApiError> {
        match self.string(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing(&self.name(key))),
        }
    }

    /// A boolean (`true` / `false`, as Stripe accepts).
    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        let name = self.name(key);
        match self.string(key)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                format!("Invalid boolean: {other}"),
                Some(name),
            )),
        }
    }

    /// An integer.
    pub fn integer(&mut self, key: &str) -> Result<Option<i64>, ApiError> {
        let name = self.name(key);
        match self.string(key)? {
            None => Ok(None),
            Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid(format!("Invalid integer: {s}"), Some(name))
                    .with_code("parameter_invalid_integer")
            }),
        }
    }

    /// A nested hash (`key[field]=…`), as typed access with its own unknown-parameter check.
    pub fn hash(&mut self, key: &str) -> Result<Option<Params>, ApiError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(Param::Map(map)) => Ok(Some(Params { map, prefix: name })),
            Some(Param::Str(s)) if s.is_empty() => Ok(Some(Params {
                map: BTreeMap::new(),
                prefix: name,
            })),
            Some(Param::Str(_)) => Err(ApiError::invalid(
                format!("Invalid hash: {name} must be a hash"),
                Some(name),
            )),
        }
    }

    /// A free-form string map (metadata): `Some(None)` values mean "remove this key".
    /// `metadata=` (empty) yields an empty map with `cleared = true`.
    pub fn string_map(&mut self, key: &str) -> Result<Option<StringMap>, ApiError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(Param::Str(s)) if s.is_empty() => Ok(Some(StringMap {
                cleared: true,
                entries: Vec::new(),
            })),
            Some(Param::Str(_)) => Err(ApiError::invalid(
                format!("Invalid hash: {name} must be a hash"),
                Some(name),
            )),
            Some(Param::Map(map)) => {
                let mut entries = Vec::new();
                for (k, v) in map {
                    match v {
                        Param::Str(s) => entries.push((k, (!s.is_empty()).then_some(s))),
                        Param::Map(_) => {
                            return Err(ApiError::invalid(
                                format!("Invalid string: {name}[{k}] must be a string"),
                                Some(format!("{name}[{k}]")),
                            ));
                        }
                    }
                }
                Ok(Some(StringMap {
                    cleared: false,
                    entries,
                }))
            }
        }
    }

    /// A list of strings (`ids[]=a&ids[]=b` or `images[0]=…`). `key=` (empty) is the empty list.
    pub fn string_list(&mut self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(Param::Str(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(Param::Str(_)) => Err(ApiError::invalid(
                format!("Invalid array: {name} must be an array"),
                Some(name),
            )),
            Some(Param::Map(map)) => ordered(map, &name)?
                .into_iter()
                .map(|(k, v)| match v {
                    Param::Str(s) => Ok(s),
                    Param::Map(_) => Err(ApiError::invalid(
                        format!("Invalid string: {name}[{k}] must be a string"),
                        Some(format!("{name}[{k}]")),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    /// A list of hashes (`marketing_features[0][name]=…`).
    pub fn hash_list(&mut self, key: &str) -> Result<Option<Vec<Params>>, ApiError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(Param::Str(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(Param::Str(_)) => Err(ApiError::invalid(
                format!("Invalid array: {name} must be an array"),
                Some(name),
            )),
            Some(Param::Map(map)) => ordered(map, &name)?
                .into_iter()
                .map(|(k, v)| match v {
                    Param::Map(map) => Ok(Params {
                        map,
                        prefix: format!("{name}[{k}]"),
                    }),
                    Param::Str(_) => Err(ApiError::invalid(
                        format!("Invalid hash: {name}[{k}] must be a hash"),
                        Some(format!("{name}[{k}]")),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    /// Rejects anything not consumed, with Stripe's message.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.map.into_keys().next() {
            None => Ok(()),
            Some(key) => {
                let name = if self.prefix.is_empty() {
                    key
                } else {
                    format!("{}[{key}]", self.prefix)
                };
                Err(
                    ApiError::invalid(format!("Received unknown parameter: {name}"), Some(name))
                        .with_code("parameter_unknown"),
                )
            }
        }
    }
}

/// Metadata-style updates: each key set to a value or removed (`None`).
#[derive(Debug, Default)]
pub struct StringMap {
    /// The whole map was cleared (`metadata=`).
    pub cleared: bool,
    /// Keys in the order sent, with `None` for removal.
    pub entries: Vec<(String, Option<String>)>,
}

/// Array members in index order; keys must be non-negative integers (or `[]` appends).
fn ordered(map: BTreeMap<String, Param>, name: &str) -> Result<Vec<(String, Param)>, ApiError> {
    let mut items = map
        .into_iter()
        .map(|(k, v)| match k.parse::<u64>() {
            Ok(i) => Ok((i, k, v)),
            Err(_) => Err(ApiError::invalid(
                format!("Invalid array: {name}[{k}] is not an array index"),
                Some(format!("{name}[{k}]")),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    items.sort_by_key(|(i, _, _)| *i);
    Ok(items.into_iter().map(|(_, k, v)| (k, v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_brackets_and_appends() {
        let map = parse(b"name=Hat&metadata[color]=red&images[1]=b&images[0]=a&expand[]=x&expand[]=y&recurring[interval]=month").unwrap();
        let mut p = Params::new(map);
        assert_eq!(p.string("name").unwrap().as_deref(), Some("Hat"));
        assert_eq!(p.string_list("images").unwrap().unwrap(), vec!["a", "b"]);
        assert_eq!(p.string_list("expand").unwrap().unwrap(), vec!["x", "y"]);
        let md = p.string_map("metadata").unwrap().unwrap();
        assert_eq!(md.entries, vec![("color".into(), Some("red".into()))]);
        let mut rec = p.hash("recurring").unwrap().unwrap();
        assert_eq!(rec.string("interval").unwrap().as_deref(), Some("month"));
        rec.finish().unwrap();
        p.finish().unwrap();
    }

    #[test]
    fn unknown_and_bad_types_name_the_param() {
        let mut p = Params::new(parse(b"active=yes&bogus=1").unwrap());
        let e = p.boolean("active").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("active"));
        let e = p.finish().unwrap_err();
        assert_eq!(e.code.as_deref(), Some("parameter_unknown"));
        assert_eq!(e.param.as_deref(), Some("bogus"));
        assert!(parse(b"a[b=1").is_err());
        assert!(parse(b"a=1&a[b]=2").is_err());
    }

    #[test]
    fn empty_metadata_value_removes_the_key() {
        let mut p = Params::new(parse(b"metadata[old]=&metadata[new]=1").unwrap());
        let md = p.string_map("metadata").unwrap().unwrap();
        assert_eq!(
            md.entries,
            vec![("new".into(), Some("1".into())), ("old".into(), None)]
        );
    }
}
