//! Stripe's products: the form that makes a product match what the catalog asks for, and the
//! requests (`/v1/products`). Every product field changes in place. The object's fields are in
//! `objects`.

use std::collections::BTreeMap;

use reqwest::Method;

use domain::metadata::META_VERSION;
use domain::model::DesiredProduct;

use crate::client::{Form, StripeClient, StripeError, path_segment};
use crate::envelope::{List, Response};
use crate::objects::Product;

/// The product fields to send so that Stripe matches `d`: all of them for a new product, only the
/// differing ones for an existing one (empty = the product's own fields match).
pub fn product_form(d: &DesiredProduct, current: Option<&Product>) -> Form {
    let mut f = Form::new();
    let differs = |field: &dyn Fn(&Product) -> bool| current.is_none_or(|c| !field(c));
    if differs(&|c| c.name == d.name) {
        f.push("name", d.name.as_str());
    }
    if differs(&|c| c.description == d.description) {
        f.push("description", d.description.clone().unwrap_or_default());
    }
    if differs(&|c| c.active == d.active) {
        f.push("active", d.active.to_string());
    }
    if differs(&|c| c.images == d.images) {
        if d.images.is_empty() {
            if current.is_some() {
                f.push("images", "");
            }
        } else {
            for (i, image) in d.images.iter().enumerate() {
                f.push(format!("images[{i}]"), image.as_str());
            }
        }
    }
    if differs(&|c| c.url == d.url) && (current.is_some() || d.url.is_some()) {
        f.push("url", d.url.clone().unwrap_or_default());
    }
    if differs(&|c| c.unit_label == d.unit_label) && (current.is_some() || d.unit_label.is_some()) {
        f.push("unit_label", d.unit_label.clone().unwrap_or_default());
    }
    if differs(&|c| c.tax_code == d.tax_code) && (current.is_some() || d.tax_code.is_some()) {
        f.push("tax_code", d.tax_code.clone().unwrap_or_default());
    }
    // Unset in the catalog leaves Stripe's value (a `false` is sent only when asked for).
    if let Some(shippable) = d.shippable
        && current.is_none_or(|c| c.shippable != Some(shippable))
    {
        f.push("shippable", shippable.to_string());
    }
    // Stripe cannot unset a statement descriptor (an empty value is refused): unset in the
    // catalog leaves Stripe's, like `shippable`.
    if let Some(descriptor) = &d.statement_descriptor
        && current.is_none_or(|c| c.statement_descriptor.as_ref() != Some(descriptor))
    {
        f.push("statement_descriptor", descriptor.as_str());
    }
    if differs(&|c| c.package_dimensions == d.package_dimensions)
        && (current.is_some() || d.package_dimensions.is_some())
    {
        match &d.package_dimensions {
            Some(dims) => {
                f.push("package_dimensions[height]", dims.height.to_string())
                    .push("package_dimensions[length]", dims.length.to_string())
                    .push("package_dimensions[weight]", dims.weight.to_string())
                    .push("package_dimensions[width]", dims.width.to_string());
            }
            None => {
                f.push("package_dimensions", "");
            }
        }
    }
    if differs(&|c| c.marketing_feature_names() == d.marketing_features)
        && (current.is_some() || !d.marketing_features.is_empty())
    {
        if d.marketing_features.is_empty() {
            f.push("marketing_features", "");
        }
        for (i, name) in d.marketing_features.iter().enumerate() {
            f.push(format!("marketing_features[{i}][name]"), name.as_str());
        }
    }
    // Metadata: compared without the version key, so a version bump alone writes nothing.
    let without_version = |m: &BTreeMap<String, String>| {
        m.iter()
            .filter(|(k, _)| k.as_str() != META_VERSION)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let current_md = current.map(|c| without_version(&c.metadata));
    let metadata_differs = current_md.as_ref() != Some(&without_version(&d.metadata));
    if metadata_differs || !f.is_empty() {
        for (k, v) in &d.metadata {
            if current.is_none_or(|c| c.metadata.get(k) != Some(v)) {
                f.push(format!("metadata[{k}]"), v.as_str());
            }
        }
        if let Some(c) = current {
            for k in c.metadata.keys().filter(|k| !d.metadata.contains_key(*k)) {
                f.push(format!("metadata[{k}]"), "");
            }
        }
    }
    f
}

impl StripeClient {
    /// `GET /v1/products/{id}`; `None` on 404.
    pub async fn get_product(&self, id: &str) -> Result<Option<Product>, StripeError> {
        match self
            .call(
                Method::GET,
                &format!("/v1/products/{}", path_segment(id)),
                &Form::new(),
                None,
            )
            .await
        {
            Ok(r) => Ok(Some(r.value)),
            Err(StripeError::Api(e)) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/products?ids[]=…&expand[]=data.default_price`: at most 100 ids, one request; the
    /// default prices come inline, so most products need no price read of their own.
    pub async fn list_products_by_ids(&self, ids: &[String]) -> Result<Vec<Product>, StripeError> {
        assert!(
            ids.len() <= 100,
            "Stripe lists at most 100 products per page"
        );
        let mut form = Form::new();
        form.push("limit", "100")
            .push("expand[]", "data.default_price");
        crate::prices::expand_prices(&mut form, "data.default_price.");
        for id in ids {
            form.push("ids[]", id.as_str());
        }
        let page: Response<List<Product>> =
            self.call(Method::GET, "/v1/products", &form, None).await?;
        Ok(page.value.data)
    }

    /// One page (100, newest first) of the account's active products, after `starting_after`.
    pub async fn list_active_products(
        &self,
        starting_after: Option<&str>,
    ) -> Result<List<Product>, StripeError> {
        self.list_products(Some(true), starting_after).await
    }

    /// One page (100, newest first) of the account's products, active, archived (`active`
    /// `Some(false)`) or both (`None`), after `starting_after`.
    pub async fn list_products(
        &self,
        active: Option<bool>,
        starting_after: Option<&str>,
    ) -> Result<List<Product>, StripeError> {
        let mut form = Form::new();
        form.push_opt("active", active.map(|a| a.to_string()).as_deref())
            .push("limit", "100");
        form.push_opt("starting_after", starting_after);
        let page: Response<List<Product>> =
            self.call(Method::GET, "/v1/products", &form, None).await?;
        Ok(page.value)
    }

    /// `POST /v1/products`.
    pub async fn create_product(
        &self,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Response<Product>, StripeError> {
        self.call(Method::POST, "/v1/products", form, Some(idempotency_key))
            .await
    }

    /// `POST /v1/products/{id}`.
    pub async fn update_product(
        &self,
        id: &str,
        form: &Form,
        idempotency_key: &str,
    ) -> Result<Response<Product>, StripeError> {
        self.call(
            Method::POST,
            &format!("/v1/products/{}", path_segment(id)),
            form,
            Some(idempotency_key),
        )
        .await
    }
}
