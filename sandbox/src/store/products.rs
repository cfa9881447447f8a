//! Stripe's Product object: its fields, the rules Stripe applies to them, and `/v1/products`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Account, Change, diff, expand_flags, now, random_id};
use crate::error::ApiError;
use crate::form::Params;
use crate::model::{self, MAX_IMAGES};
use crate::store::price_params;
use crate::store::prices::Price;
use domain::limits::{
    MAX_DESCRIPTION, MAX_MARKETING_FEATURE_NAME, MAX_MARKETING_FEATURES, MAX_STATEMENT_DESCRIPTOR,
    MAX_UNIT_LABEL,
};

/// A Stripe Product.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    /// `prod_…` or a caller-chosen id.
    pub id: String,
    /// Whether the product is available for purchase.
    pub active: bool,
    /// Creation time (unix seconds).
    pub created: i64,
    /// Last update time (unix seconds).
    pub updated: i64,
    /// The default price id.
    pub default_price: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Up to eight image URLs.
    pub images: Vec<String>,
    /// Feature names.
    pub marketing_features: Vec<String>,
    /// Key-value metadata.
    pub metadata: BTreeMap<String, String>,
    /// Display name.
    pub name: String,
    /// Package dimensions, kept as sent.
    pub package_dimensions: Option<BTreeMap<String, f64>>,
    /// Whether the product is shipped.
    pub shippable: Option<bool>,
    /// Statement descriptor.
    pub statement_descriptor: Option<String>,
    /// Tax code id.
    pub tax_code: Option<String>,
    /// Unit label.
    pub unit_label: Option<String>,
    /// Public URL.
    pub url: Option<String>,
}

impl Product {
    /// The wire form; `default_price` is expanded when `expanded_price` is given.
    pub fn to_json(&self, expanded_price: Option<Value>) -> Value {
        json!({
            "id": self.id,
            "object": "product",
            "active": self.active,
            "attributes": [],
            "created": self.created,
            "default_price": expanded_price.unwrap_or_else(|| json!(self.default_price)),
            "description": self.description,
            "images": self.images,
            "livemode": false,
            "marketing_features": self.marketing_features.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
            "metadata": self.metadata,
            "name": self.name,
            "package_dimensions": self.package_dimensions,
            "shippable": self.shippable,
            "statement_descriptor": self.statement_descriptor,
            "tax_code": self.tax_code,
            "type": "service",
            "unit_label": self.unit_label,
            "updated": self.updated,
            "url": self.url,
        })
    }
}

/// Product fields shared by create and update.
fn apply_product_fields(product: &mut Product, p: &mut Params) -> Result<(), ApiError> {
    if let Some(name) = p.string("name")? {
        if name.is_empty() {
            return Err(ApiError::invalid(
                "You must provide a name for the product.",
                Some("name".into()),
            ));
        }
        product.name = name;
    }
    if let Some(v) = p.boolean("active")? {
        product.active = v;
    }
    if let Some(v) = p.nullable_string("description")? {
        if v.as_ref()
            .is_some_and(|s| s.chars().count() > MAX_DESCRIPTION)
        {
            return Err(ApiError::invalid(
                format!("The description must be at most {MAX_DESCRIPTION} characters."),
                Some("description".into()),
            ));
        }
        product.description = v;
    }
    if let Some(images) = p.string_list("images")? {
        if images.len() > MAX_IMAGES {
            return Err(ApiError::invalid(
                format!("You can provide at most {MAX_IMAGES} images."),
                Some("images".into()),
            ));
        }
        product.images = images;
    }
    if let Some(features) = p.hash_list("marketing_features")? {
        if features.len() > MAX_MARKETING_FEATURES {
            return Err(ApiError::invalid(
                format!("You can provide at most {MAX_MARKETING_FEATURES} marketing features."),
                Some("marketing_features".into()),
            ));
        }
        let mut names = Vec::new();
        for (i, mut f) in features.into_iter().enumerate() {
            let name = f.required_string("name")?;
            if name.chars().count() > MAX_MARKETING_FEATURE_NAME {
                return Err(ApiError::invalid(
                    format!(
                        "The marketing feature name must be at most {MAX_MARKETING_FEATURE_NAME} characters."
                    ),
                    Some(format!("marketing_features[{i}][name]")),
                ));
            }
            names.push(name);
            f.finish()?;
        }
        product.marketing_features = names;
    }
    if let Some(md) = p.string_map("metadata")? {
        model::apply_metadata(&mut product.metadata, md, "metadata")?;
    }
    if p.has("package_dimensions") && !p.is_hash("package_dimensions") {
        // `package_dimensions=` unsets them.
        if p.string("package_dimensions")?
            .is_some_and(|v| !v.is_empty())
        {
            return Err(ApiError::invalid(
                "Invalid hash: package_dimensions must be a hash",
                Some("package_dimensions".into()),
            ));
        }
        product.package_dimensions = None;
    }
    if let Some(mut dims) = p.hash("package_dimensions")? {
        let mut out = BTreeMap::new();
        for key in ["height", "length", "weight", "width"] {
            let raw = dims.required_string(key)?;
            let param = format!("package_dimensions[{key}]");
            let v = raw.parse::<f64>().map_err(|_| {
                ApiError::invalid(format!("Invalid decimal: {raw}"), Some(param.clone()))
            })?;
            if !(v.is_finite() && v > 0.0) {
                return Err(ApiError::invalid(
                    format!("Invalid {param}: must be greater than 0"),
                    Some(param),
                ));
            }
            out.insert(key.to_string(), v);
        }
        dims.finish()?;
        product.package_dimensions = Some(out);
    }
    if let Some(v) = p.boolean("shippable")? {
        product.shippable = Some(v);
    }
    // Not emptyable: Stripe refuses `statement_descriptor=` (it cannot be unset).
    if let Some(text) = p.string("statement_descriptor")? {
        statement_descriptor(&text)?;
        product.statement_descriptor = Some(text);
    }
    if let Some(v) = p.nullable_string("tax_code")? {
        product.tax_code = v;
    }
    if let Some(v) = p.nullable_string("unit_label")? {
        if v.as_ref()
            .is_some_and(|s| s.chars().count() > MAX_UNIT_LABEL)
        {
            return Err(ApiError::invalid(
                format!("The unit label must be at most {MAX_UNIT_LABEL} characters."),
                Some("unit_label".into()),
            ));
        }
        product.unit_label = v;
    }
    if let Some(v) = p.nullable_string("url")? {
        product.url = v;
    }
    Ok(())
}

/// Stripe's rules for a statement descriptor: 5-22 Latin characters with a letter, none of
/// `<>\'"*`.
fn statement_descriptor(text: &str) -> Result<(), ApiError> {
    let length = text.chars().count();
    let fail = |why: String| {
        Err(ApiError::invalid(
            format!("Invalid statement_descriptor: {why}"),
            Some("statement_descriptor".into()),
        ))
    };
    if !(5..=MAX_STATEMENT_DESCRIPTOR).contains(&length) {
        return fail(format!(
            "must be between 5 and {MAX_STATEMENT_DESCRIPTOR} characters"
        ));
    }
    if !text.chars().any(|c| c.is_ascii_alphabetic()) {
        return fail("must contain at least one letter".into());
    }
    if text
        .chars()
        .any(|c| !c.is_ascii() || "<>\\'\"*".contains(c))
    {
        return fail("may not contain non-Latin characters or any of <>\\'\"*".into());
    }
    Ok(())
}

impl Account {
    /// `POST /v1/products`.
    pub fn create_product(&mut self, mut p: Params) -> Result<(Value, Vec<Change>), ApiError> {
        let expand = expand_flags(&mut p)?;
        let id = match p.string("id")? {
            Some(id) => {
                model::custom_id(&id)?;
                if self.products.get(&id).is_some() {
                    return Err(
                        ApiError::invalid("Product already exists.", Some("id".into()))
                            .with_code("resource_already_exists"),
                    );
                }
                id
            }
            None => random_id("prod"),
        };
        if !p.has("name") {
            return Err(ApiError::missing("name"));
        }
        let t = now();
        let mut product = Product {
            id: id.clone(),
            active: true,
            created: t,
            updated: t,
            default_price: None,
            description: None,
            images: Vec::new(),
            marketing_features: Vec::new(),
            metadata: BTreeMap::new(),
            name: String::new(),
            package_dimensions: None,
            shippable: None,
            statement_descriptor: None,
            tax_code: None,
            unit_label: None,
            url: None,
        };
        apply_product_fields(&mut product, &mut p)?;
        let price = match p.hash("default_price_data")? {
            Some(d) => Some(default_price_data(d, &id, t)?),
            None => None,
        };
        if p.has("default_price") {
            return Err(ApiError::invalid(
                "Received unknown parameter: default_price. Did you mean default_price_data?",
                Some("default_price".into()),
            )
            .with_code("parameter_unknown"));
        }
        p.finish()?;
        let mut changes = Vec::new();
        let seq = self.seq();
        if let Some(price) = &price {
            product.default_price = Some(price.id.clone());
        }
        self.products.insert(seq, id.clone(), product.clone());
        changes.push(Change {
            event_type: "product.created",
            object: product.to_json(None),
            previous_attributes: None,
            object_id: id.clone(),
        });
        if let Some(price) = price {
            let seq = self.seq();
            changes.push(Change {
                event_type: "price.created",
                object: price.to_json(),
                previous_attributes: None,
                object_id: price.id.clone(),
            });
            self.insert_price(seq, price);
        }
        let product = self.products.get(&id).expect("just inserted");
        Ok((
            self.render_product(product, expand.default_price, expand.includes),
            changes,
        ))
    }

    /// `GET /v1/products/{id}`.
    pub fn get_product(&self, id: &str, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        p.finish()?;
        let product = self
            .products
            .get(id)
            .ok_or_else(|| ApiError::not_found("product", id))?;
        Ok(self.render_product(product, expand.default_price, expand.includes))
    }

    /// `POST /v1/products/{id}`.
    pub fn update_product(
        &mut self,
        id: &str,
        mut p: Params,
    ) -> Result<(Value, Vec<Change>), ApiError> {
        let expand = expand_flags(&mut p)?;
        let before = self
            .products
            .get(id)
            .ok_or_else(|| ApiError::not_found("product", id))?
            .clone();
        let mut product = before.clone();
        apply_product_fields(&mut product, &mut p)?;
        if let Some(price_id) = p.nullable_string("default_price")? {
            if let Some(price_id) = &price_id {
                let price = self.prices.get(price_id).ok_or_else(|| {
                    ApiError::not_found("price", price_id).with_param("default_price")
                })?;
                if price.product != id {
                    return Err(ApiError::invalid(
                        format!("The price `{price_id}` does not belong to product `{id}`."),
                        Some("default_price".into()),
                    ));
                }
                if !price.active {
                    return Err(ApiError::invalid(
                        format!(
                            "The price `{price_id}` is not active and cannot be set as the default price."
                        ),
                        Some("default_price".into()),
                    ));
                }
            }
            product.default_price = price_id;
        }
        p.finish()?;
        let mut changes = Vec::new();
        let previous = diff(&before.to_json(None), &product.to_json(None));
        if previous.as_object().is_some_and(|m| !m.is_empty()) {
            product.updated = now();
            changes.push(Change {
                event_type: "product.updated",
                object: product.to_json(None),
                previous_attributes: Some(previous),
                object_id: id.to_string(),
            });
        }
        *self.products.get_mut(id).expect("exists") = product.clone();
        Ok((
            self.render_product(&product, expand.default_price, expand.includes),
            changes,
        ))
    }

    /// `DELETE /v1/products/{id}`.
    pub fn delete_product(&mut self, id: &str) -> Result<(Value, Vec<Change>), ApiError> {
        let product = self
            .products
            .get(id)
            .ok_or_else(|| ApiError::not_found("product", id))?;
        if self.prices.by_seq.values().any(|price| price.product == id) {
            return Err(ApiError::invalid(
                "This product cannot be deleted because it has one or more user-created prices.",
                None,
            ));
        }
        let object = product.to_json(None);
        self.products.remove(id);
        Ok((
            json!({ "id": id, "object": "product", "deleted": true }),
            vec![Change {
                event_type: "product.deleted",
                object,
                previous_attributes: None,
                object_id: id.to_string(),
            }],
        ))
    }

    /// `GET /v1/products`.
    pub fn list_products(&self, mut p: Params) -> Result<Value, ApiError> {
        let expand = expand_flags(&mut p)?;
        let active = p.boolean("active")?;
        let shippable = p.boolean("shippable")?;
        let url = p.string("url")?;
        let ids = p.string_list("ids")?;
        if p.has("created") {
            // `created` filters are accepted but, since the sandbox cannot backdate, not narrowing.
            let _ = p.hash("created")?;
        }
        let page = self.page(&mut p, &self.products.seq_of, "product")?;
        p.finish()?;
        let id_seqs: Option<std::collections::HashSet<u64>> = ids.map(|ids| {
            ids.iter()
                .filter_map(|id| self.products.seq_of.get(id).copied())
                .collect()
        });
        let keep = |prod: &Product| {
            active.is_none_or(|a| prod.active == a)
                && shippable.is_none_or(|s| prod.shippable == Some(s))
                && url.as_ref().is_none_or(|u| prod.url.as_ref() == Some(u))
        };
        let (items, has_more) = match &id_seqs {
            // With `ids[]`, look each up directly rather than scanning the whole account.
            Some(seqs) => {
                let mut sorted: Vec<u64> = seqs.iter().copied().collect();
                sorted.sort_unstable();
                let subset: BTreeMap<u64, &Product> = sorted
                    .into_iter()
                    .filter_map(|s| self.products.by_seq.get(&s).map(|p| (s, p)))
                    .collect();
                let (items, more) = Self::paginate(&subset, &page, |p| keep(p));
                (items.into_iter().copied().collect::<Vec<_>>(), more)
            }
            None => Self::paginate(&self.products.by_seq, &page, keep),
        };
        let data = items
            .into_iter()
            .map(|prod| self.render_product(prod, expand.data_default_price, expand.includes))
            .collect();
        Ok(Self::list_json("/v1/products", data, has_more))
    }
}

/// A product's `default_price_data[…]`: a price as `POST /v1/prices` makes it, less what Stripe's
/// `default_price_data` does not take (tiers, packaging, a metered period, the nickname and the
/// lookup key: set them after with `POST /v1/prices/{id}`, or create the price on its own).
fn default_price_data(mut d: Params, product: &str, t: i64) -> Result<Price, ApiError> {
    for unknown in [
        "billing_scheme",
        "tiers",
        "tiers_mode",
        "transform_quantity",
        "nickname",
        "lookup_key",
        "transfer_lookup_key",
        "product",
    ] {
        if d.has(unknown) {
            return Err(ApiError::invalid(
                format!("Received unknown parameter: default_price_data[{unknown}]"),
                Some(format!("default_price_data[{unknown}]")),
            )
            .with_code("parameter_unknown"));
        }
    }
    let currency = model::currency(
        d.required_string("currency")?,
        "default_price_data[currency]",
    )?;
    let recurring = d
        .hash("recurring")?
        .map(|r| price_params::recurring(r, "default_price_data[recurring]"))
        .transpose()?;
    if recurring.as_ref().is_some_and(|r| r.metered) {
        return Err(ApiError::invalid(
            "default_price_data cannot make a metered price: create it with POST /v1/prices.",
            Some("default_price_data[recurring][usage_type]".into()),
        ));
    }
    let scheme = price_params::Scheme::parse(&mut d, &currency, recurring.is_some())
        .map_err(|e| e.within("default_price_data"))?;
    let tax_behavior = d
        .string("tax_behavior")?
        .map(price_params::tax_behavior)
        .transpose()?;
    let mut metadata = BTreeMap::new();
    if let Some(md) = d.string_map("metadata")? {
        model::apply_metadata(&mut metadata, md, "default_price_data[metadata]")?;
    }
    d.finish()?;
    Ok(Price {
        id: random_id("price"),
        active: true,
        created: t,
        currency,
        lookup_key: None,
        metadata,
        nickname: None,
        product: product.to_string(),
        recurring: recurring.map(|r| r.period),
        tax_behavior: tax_behavior.unwrap_or_else(|| "unspecified".into()),
        unit_amount: scheme.unit_amount,
        tiers: Vec::new(),
        tiers_mode: None,
        currency_options: scheme.currency_options,
        custom_unit_amount: scheme.custom_unit_amount,
        transform_quantity: None,
        meter: None,
    })
}
