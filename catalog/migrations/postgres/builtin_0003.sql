-- Tiered, multi-currency, pay-what-you-want, packaged and metered prices (issue 16). JSON as text, in the
-- shapes of catalog-sync's model (README, "Your own catalog"); the defaults keep existing prices
-- per unit, in one currency.
ALTER TABLE catalog_prices
    ADD COLUMN IF NOT EXISTS tiers              TEXT NOT NULL DEFAULT '[]',  -- [{"up_to", "unit_amount", "flat_amount"}]
    ADD COLUMN IF NOT EXISTS tiers_mode         TEXT,                        -- graduated | volume
    ADD COLUMN IF NOT EXISTS currency_options   TEXT NOT NULL DEFAULT '{}',  -- {"eur": {"unit_amount", "tiers", "tax_behavior"}}
    ADD COLUMN IF NOT EXISTS custom_unit_amount TEXT,                        -- {"minimum", "maximum", "preset"}
    ADD COLUMN IF NOT EXISTS transform_quantity TEXT,                        -- {"divide_by", "round"}
    ADD COLUMN IF NOT EXISTS usage_type         TEXT,                        -- licensed | metered
    ADD COLUMN IF NOT EXISTS meter              TEXT,                        -- mtr_… of a metered price
    ADD COLUMN IF NOT EXISTS lookup_key         TEXT;                        -- the price's own; NULL: catalog-sync's
