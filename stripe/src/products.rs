//! Stripe's products: the form that makes a product match what the catalog asks for, and the
//! requests (`/v1/products`). Every product field changes in place. The object's fields are in
//! `objects`.

use std::collections::BTreeMap;

use reqwest::Method;

use domain::fields::PRODUCT_FIELDS;
use domain::metadata::META_VERSION;
use domain::model::DesiredProduct;

use crate::client::{Form, StripeClient, StripeError, path_segment};
use crate::envelope::{List, Response};
use crate::objects::Product;

/// The product fields to send so that Stripe matches `d`: all of them for a new product, only the
/// differing ones for an existing one (empty = the product's own fields match). The fields Stripe
/// holds follow their entries in [`PRODUCT_FIELDS`]; `active` and the metadata are compared here.
pub fn product_form(d: &DesiredProduct, current: Option<&Product>) -> Form {
    let mut f = Form::new();
    let current_json = current.map(Product::json);
    for field in PRODUCT_FIELDS {
        let have = current_json.as_ref().map(|c| field.from_stripe(c));
        for (key, value) in field.form(&(field.access.desired)(d), have.as_ref()) {
            f.push(key, value);
        }
    }
    if current.is_none_or(|c| c.active != d.active) {
        f.push("active", d.active.to_string());
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
