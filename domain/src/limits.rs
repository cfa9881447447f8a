//! Stripe's facts that more than one crate needs, written once: the currencies it accepts and its
//! limits on what catalog-sync writes. The transform checks them before any request, the CLI
//! before an edit, and the sandbox applies the same ones to what it is sent.

/// ISO 4217 codes Stripe accepts for prices, lowercase as on the wire.
pub const CURRENCIES: &[&str] = &[
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
    "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
    "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
    "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
    "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
    "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
    "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
    "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
    "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
    "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
];

/// Currencies whose amounts have no minor unit: `unit_amount=500` is ¥500.
pub const ZERO_DECIMAL_CURRENCIES: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Currencies with three decimal places: `unit_amount=5000` is 5.000 KWD.
pub const THREE_DECIMAL_CURRENCIES: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// How many decimal places a currency's amounts have in Stripe's minor unit (0, 2 or 3), any case.
pub fn currency_decimals(currency: &str) -> u32 {
    let currency = currency.to_ascii_lowercase();
    if ZERO_DECIMAL_CURRENCIES.contains(&currency.as_str()) {
        0
    } else if THREE_DECIMAL_CURRENCIES.contains(&currency.as_str()) {
        3
    } else {
        2
    }
}

/// An amount written in the currency's major unit (`19.99` USD, `500` JPY, `1.250` KWD: how
/// shops often store prices) in Stripe's minor unit (`1999`, `500`, `1250`). Exact: an amount
/// with more decimal places than the currency has is refused, never rounded.
pub fn minor_units(major: &str, currency: &str) -> Result<i64, String> {
    let decimals = currency_decimals(currency);
    let text = major.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(format!("{text:?} is not a decimal amount"));
    }
    let significant = fraction.trim_end_matches('0');
    if significant.len() > decimals as usize {
        return Err(format!(
            "{text} has {} decimal places, and {} amounts have {decimals}: catalog-sync does not \
             round a price",
            significant.len(),
            currency.to_ascii_uppercase()
        ));
    }
    let scaled = format!("{whole}{significant:0<width$}", width = decimals as usize);
    let value: i64 = scaled
        .parse()
        .map_err(|_| format!("{text} is too large an amount"))?;
    Ok(if negative { -value } else { value })
}

/// Longest product name.
pub const MAX_NAME: usize = 250;
/// Longest product description (the `maxLength` of Stripe's API for it).
pub const MAX_DESCRIPTION: usize = 40_000;
/// The largest catalog product, with its prices, as JSON, that a sync carries through Temporal.
/// Temporal refuses a payload over 2 MB (warning past 512 KB) and fails the workflow that
/// carries one; any product Stripe takes fits in far less. A larger row is reported invalid
/// when it is read, naming its largest field, and never enters a workflow's history.
pub const MAX_PRODUCT_JSON_BYTES: usize = 256 * 1024;
/// Largest amount in minor units (eight digits, as Stripe's API takes).
pub const MAX_AMOUNT: i64 = 99_999_999;
/// Longest catalog id (catalog-sync's own limit: the id is the Stripe product id and is part of
/// the lookup keys, which Stripe caps at [`MAX_LOOKUP_KEY`]).
pub const MAX_ID: usize = 100;
/// Most images on a product.
pub const MAX_IMAGES: usize = 8;
/// Longest unit label.
pub const MAX_UNIT_LABEL: usize = 12;
/// Longest statement descriptor.
pub const MAX_STATEMENT_DESCRIPTOR: usize = 22;
/// Most marketing features on a product.
pub const MAX_MARKETING_FEATURES: usize = 15;
/// Longest marketing feature name.
pub const MAX_MARKETING_FEATURE_NAME: usize = 80;
/// Longest price lookup key.
pub const MAX_LOOKUP_KEY: usize = 200;
/// How long Stripe keeps events (`GET /v1/events`): 30 days, in seconds.
pub const EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Most metadata keys on an object.
pub const METADATA_MAX_KEYS: usize = 50;
/// Longest metadata key.
pub const METADATA_MAX_KEY_LEN: usize = 40;
/// Longest metadata value.
pub const METADATA_MAX_VALUE_LEN: usize = 500;
/// The tax behaviors Stripe takes for a price (and for each of its other currencies).
pub const TAX_BEHAVIORS: &[&str] = &["inclusive", "exclusive", "unspecified"];
/// Recurring intervals, each with the largest `interval_count` Stripe takes (three years).
pub const INTERVALS: &[(&str, i64)] = &[("day", 1095), ("week", 156), ("month", 36), ("year", 3)];

/// The largest `interval_count` of an interval, `None` for an unknown interval.
pub fn max_interval_count(interval: &str) -> Option<i64> {
    INTERVALS
        .iter()
        .find(|(name, _)| *name == interval)
        .map(|(_, max)| *max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_become_minor_units_by_the_currency() {
        assert_eq!(minor_units("19.99", "usd"), Ok(1999));
        assert_eq!(minor_units("19.9", "USD"), Ok(1990));
        assert_eq!(minor_units("20", "eur"), Ok(2000));
        assert_eq!(
            minor_units("19.990", "usd"),
            Ok(1999),
            "trailing zeros are no decimals"
        );
        assert_eq!(minor_units("500", "jpy"), Ok(500));
        assert_eq!(minor_units("500.0", "JPY"), Ok(500));
        assert_eq!(minor_units("1.25", "kwd"), Ok(1250));
        assert_eq!(minor_units("0.00", "usd"), Ok(0));
        assert_eq!(minor_units(".5", "usd"), Ok(50));
        assert_eq!(minor_units("-1.5", "usd"), Ok(-150));
        let refused = minor_units("19.999", "usd").unwrap_err();
        assert!(
            refused.contains("3 decimal places") && refused.contains("USD"),
            "{refused}"
        );
        assert!(minor_units("500.5", "jpy").is_err());
        assert!(minor_units("1e3", "usd").is_err());
        assert!(minor_units("", "usd").is_err());
        assert!(minor_units(".", "usd").is_err());
        assert!(minor_units("99999999999999999999", "usd").is_err());
    }
}
