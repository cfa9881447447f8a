//! `starter webhooks`: the Stripe webhook endpoint the relay receives events at.
//!
//! - `install --url URL` creates the endpoint with exactly the events catalog-sync consumes and
//!   prints its signing secret, once (Stripe never shows it again): give it to the relay as
//!   `STRIPE_WEBHOOK_SECRET`. Run again, it updates the endpoint it made (URL, events, enabled)
//!   instead of adding a second one; the secret stays.
//! - `uninstall` deletes the endpoints it made for this catalog; `list` shows them.
//!
//! The endpoints catalog-sync makes carry the catalog's identity in their metadata
//! (`catalog_sync_catalog`): that is how it finds its own and never touches anyone else's. With
//! `STRIPE_ACCOUNT` (Connect), the endpoint is made on the platform with `connect=true`: Stripe
//! sends it the events of the connected accounts, and the relay takes its account's.

use anyhow::Context;
use catalog::Catalog;
use clap::{Args, Subcommand};
use common::settings::StripeSettings;
use domain::metadata::META_CATALOG;
use stripe::client::{Form, StripeClient, StripeConfig};
use stripe::webhook_endpoints::{EVENTS, WebhookEndpoint};

/// `starter meters`.
#[derive(Subcommand)]
pub(crate) enum MetersCommand {
    /// Print the id of the active Billing Meter counting `--event-name`, making it (a sum of the
    /// events' `value` per customer) when there is none.
    Ensure(EnsureMeterArgs),
}

#[derive(Args)]
pub(crate) struct EnsureMeterArgs {
    #[command(flatten)]
    stripe: StripeArgs,
    /// The usage events' name, e.g. `api_requests`.
    #[arg(long)]
    event_name: String,
    /// What people see (default: the event name).
    #[arg(long)]
    display_name: Option<String>,
}

/// `starter meters ensure`: one meter per event name, found or made.
pub(crate) async fn meters(command: MetersCommand) -> anyhow::Result<()> {
    let MetersCommand::Ensure(args) = command;
    let settings = &args.stripe.stripe;
    let stripe = StripeClient::new(StripeConfig::from_settings(settings)?)?;
    let found = stripe
        .list_active_meters()
        .await
        .context("listing Billing Meters")?
        .into_iter()
        .find(|m| m.event_name == args.event_name);
    let meter = match found {
        Some(meter) => meter,
        None => {
            let name = args.display_name.as_deref().unwrap_or(&args.event_name);
            // A key of this run's own: a fixed one would replay, for 24 hours, a meter made and
            // deactivated since. Two runs at once still make one meter: Stripe refuses a second
            // active meter for an event name.
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let key = format!("catalog-sync-meter-{}-{nonce:x}", args.event_name);
            stripe
                .create_meter(name, &args.event_name, &key)
                .await
                .context("creating the Billing Meter")?
        }
    };
    println!("{}", meter.id);
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Create (or bring up to date) the webhook endpoint and print its signing secret once.
    Install(InstallArgs),
    /// Delete the webhook endpoints catalog-sync made for this catalog.
    Uninstall(StripeArgs),
    /// The webhook endpoints catalog-sync made for this catalog.
    List(ListArgs),
}

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    stripe: StripeArgs,
    /// One JSON object per endpoint.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct StripeArgs {
    #[command(flatten)]
    stripe: StripeSettings,
}

#[derive(Args)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    stripe: StripeArgs,
    /// Where Stripe sends events: the relay's `/stripe/webhook`, reachable from Stripe, e.g.
    /// `https://sync.example.com/stripe/webhook`.
    #[arg(long)]
    url: String,
}

pub(crate) async fn run(catalog: &Catalog, command: WebhooksCommand) -> anyhow::Result<()> {
    let identity = catalog.identity().await?;
    match command {
        WebhooksCommand::Install(args) => install(&identity, &args.stripe.stripe, &args.url).await,
        WebhooksCommand::Uninstall(args) => {
            let (stripe, _) = platform_client(&args.stripe)?;
            let ours = ours(&stripe, &identity).await?;
            for endpoint in &ours {
                stripe.delete_webhook_endpoint(&endpoint.id).await?;
                println!("deleted  {} ({})", endpoint.id, endpoint.url);
            }
            println!(
                "webhooks: deleted {} endpoints of catalog {identity}",
                ours.len()
            );
            Ok(())
        }
        WebhooksCommand::List(args) => {
            let (stripe, _) = platform_client(&args.stripe.stripe)?;
            let ours = ours(&stripe, &identity).await?;
            if args.json {
                for e in &ours {
                    let line = serde_json::json!({
                        "id": e.id, "status": e.status, "url": e.url,
                        "enabled_events": e.enabled_events,
                    });
                    println!("{line}");
                }
                return Ok(());
            }
            for e in &ours {
                println!(
                    "{}  {}  {}  {}",
                    e.id,
                    e.status,
                    e.url,
                    e.enabled_events.join(",")
                );
            }
            println!("webhooks: {} endpoints of catalog {identity}", ours.len());
            Ok(())
        }
    }
}

/// A client of the key's own account (webhook endpoints of Connect live on the platform), and
/// whether the endpoint is a Connect endpoint.
fn platform_client(settings: &StripeSettings) -> anyhow::Result<(StripeClient, bool)> {
    let stripe = StripeClient::new(StripeConfig {
        account: None,
        ..StripeConfig::from_settings(settings)?
    })?;
    Ok((stripe, settings.account().is_some()))
}

/// The metadata key naming which events an endpoint catalog-sync made receives: [`KIND_ACCOUNT`]
/// (the key's own account's) or [`KIND_CONNECT`] (its connected accounts'). Stripe's endpoint
/// object does not say whether it was made with `connect=true`.
const META_ENDPOINT_KIND: &str = "catalog_sync_endpoint";
/// An endpoint of the account's own events.
const KIND_ACCOUNT: &str = "account";
/// An endpoint of connected accounts' events.
const KIND_CONNECT: &str = "connect";

/// What an endpoint receives ([`META_ENDPOINT_KIND`]); one made before the key was written is
/// taken for an account endpoint.
fn endpoint_kind(endpoint: &WebhookEndpoint) -> &str {
    endpoint
        .metadata
        .get(META_ENDPOINT_KIND)
        .map_or(KIND_ACCOUNT, String::as_str)
}

/// The endpoints this catalog made.
async fn ours(stripe: &StripeClient, identity: &str) -> anyhow::Result<Vec<WebhookEndpoint>> {
    Ok(stripe
        .list_webhook_endpoints()
        .await
        .context("listing webhook endpoints")?
        .into_iter()
        .filter(|e| e.metadata.get(META_CATALOG).map(String::as_str) == Some(identity))
        .collect())
}

async fn install(identity: &str, settings: &StripeSettings, url: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        url.starts_with("https://") || url.starts_with("http://"),
        "--url must be an http(s) URL of the relay's /stripe/webhook, got {url:?}"
    );
    if settings.is_stripe() && !url.starts_with("https://") {
        anyhow::bail!(
            "Stripe sends events to HTTPS URLs only: --url {url} must start with https://"
        );
    }
    let (stripe, connect) = platform_client(settings)?;
    let mut form = Form::new();
    form.push("url", url);
    for (i, event) in EVENTS.iter().enumerate() {
        form.push(format!("enabled_events[{i}]"), *event);
    }
    let kind = if connect { KIND_CONNECT } else { KIND_ACCOUNT };
    let existing = ours(&stripe, identity).await?;
    // Only an endpoint of the same kind is updated in place: Stripe cannot turn an account's
    // endpoint into a Connect one (or back), and one of the other kind would never receive the
    // events this relay is for.
    let (same, other): (Vec<&WebhookEndpoint>, Vec<&WebhookEndpoint>) =
        existing.iter().partition(|e| endpoint_kind(e) == kind);
    for e in &other {
        eprintln!(
            "left     {} ({}): a {} endpoint; this install is for {kind} events",
            e.id,
            e.url,
            endpoint_kind(e)
        );
    }
    // The one with this URL, else any of ours (the relay moved): update it in place.
    let found = same.iter().find(|e| e.url == url).or_else(|| same.first());
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let key = format!("cs-webhooks-{identity}-{nonce}");
    match found {
        Some(endpoint) => {
            form.push("disabled", "false");
            let updated = stripe
                .update_webhook_endpoint(&endpoint.id, &form, &key)
                .await
                .context("updating the webhook endpoint")?;
            println!(
                "updated  {} ({url}): events {}; its signing secret is unchanged (Stripe shows \
                 it only at creation: to replace it, `starter webhooks uninstall` then install)",
                updated.id,
                EVENTS.join(", ")
            );
        }
        None => {
            form.push(format!("metadata[{META_CATALOG}]"), identity)
                .push(format!("metadata[{META_ENDPOINT_KIND}]"), kind)
                .push(
                    "description",
                    format!("catalog-sync relay of catalog {identity}"),
                )
                .push("api_version", settings.api_version().as_str());
            if connect {
                form.push("connect", "true");
            }
            let created = stripe
                .create_webhook_endpoint(&form, &key)
                .await
                .context("creating the webhook endpoint")?;
            let secret = created
                .secret
                .context("Stripe returned no signing secret for the new endpoint")?;
            eprintln!(
                "created  {} ({url}{}): events {}. The signing secret follows, shown once: give \
                 it to the relay as STRIPE_WEBHOOK_SECRET.",
                created.id,
                if connect { ", Connect" } else { "" },
                EVENTS.join(", ")
            );
            println!("STRIPE_WEBHOOK_SECRET={secret}");
        }
    }
    Ok(())
}
