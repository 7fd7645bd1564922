//! The station's own settings, kept in the encrypted database and never synchronised: the
//! deadline rules (TTLT 01/2017 defaults, changeable by the station) and the draft of the
//! tip form, so that nothing typed is lost when the window closes.

use chrono::{DateTime, Utc};
use serde_json::json;

use binhyen_domain::Invalid;

use crate::audit::Action;
use crate::changes::{meta_get, meta_set};
use crate::report::DeadlineRules;
use crate::{Result, Station, StoreError};

const RULES_KEY: &str = "settings.deadlines";
const DRAFT_KEY: &str = "draft.tip";
/// A draft larger than this is refused (a tip's content is text, not a file).
const MAX_DRAFT_BYTES: usize = 256 * 1024;

impl DeadlineRules {
    /// Refuses hours a person cannot have meant: none, or more than thirty days.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        for (field, hours) in [
            ("transfer_hours", self.transfer_hours),
            ("transfer_hours_remote", self.transfer_hours_remote),
        ] {
            if hours == 0 || hours > 720 {
                errors.push(binhyen_domain::FieldError::new(
                    field,
                    "bad_hours",
                    "Thời hạn phải từ 1 đến 720 giờ.",
                ));
            }
        }
        if errors.is_empty() && self.transfer_hours_remote < self.transfer_hours {
            errors.push(binhyen_domain::FieldError::new(
                "transfer_hours_remote",
                "remote_shorter",
                "Thời hạn cho địa bàn xa không được ngắn hơn thời hạn thông thường.",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errors))
        }
    }
}

impl Station {
    /// The deadline rules this station works by (the defaults until someone changes them).
    pub fn deadline_rules(&self) -> Result<DeadlineRules> {
        Ok(match meta_get(&self.conn, RULES_KEY)? {
            Some(v) => serde_json::from_str(&v)?,
            None => DeadlineRules::default(),
        })
    }

    /// Changes the deadline rules (checked first; the change is audited).
    pub fn set_deadline_rules(&mut self, rules: DeadlineRules, now: DateTime<Utc>) -> Result<()> {
        self.require(binhyen_domain::access::Permission::SettingsManage)?;
        rules.validate()?;
        let before = self.deadline_rules()?;
        let w = self.writer(now)?;
        meta_set(w.conn(), RULES_KEY, &serde_json::to_string(&rules)?)?;
        w.audit(
            Action::SettingsChange,
            None,
            json!({ "deadlines": { "before": before, "after": rules } }),
        )?;
        w.commit()
    }

    /// The tip form's draft as the window last saved it.
    pub fn draft(&self) -> Result<Option<serde_json::Value>> {
        self.require(binhyen_domain::access::Permission::TipRecord)?;
        meta_get(&self.conn, DRAFT_KEY)?
            .map(|v| serde_json::from_str(&v).map_err(StoreError::from))
            .transpose()
    }

    /// Keeps the tip form's draft (any JSON the window chooses), or clears it with `None`.
    pub fn set_draft(&self, draft: Option<&serde_json::Value>) -> Result<()> {
        self.require(binhyen_domain::access::Permission::TipRecord)?;
        match draft {
            Some(d) => {
                let text = serde_json::to_string(d)?;
                if text.len() > MAX_DRAFT_BYTES {
                    return Err(Invalid::one(
                        "draft",
                        "too_large",
                        "Bản nháp quá dài (tối đa 256 KB); hãy lưu nguồn tin rồi bổ sung sau.",
                    )
                    .into());
                }
                meta_set(&self.conn, DRAFT_KEY, &text)
            }
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = ?1", [DRAFT_KEY])?;
                Ok(())
            }
        }
    }
}
