//! The station's own settings, kept in the encrypted database and never synchronised: the
//! deadline rules (TTLT 01/2017 defaults, changeable by the station) and each officer's draft
//! of the tip form, so that nothing typed is lost when the window closes. A draft may hold a
//! reporter's name half typed: it is sealed to the officer's own box key, so that neither the
//! database key (an administrator's) nor another officer opens it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ts_rs::TS;

use binhyen_domain::Invalid;

use crate::audit::Action;
use crate::changes::{meta_get, meta_set};
use crate::{Result, Station, StoreError};

const RULES_KEY: &str = "settings.deadlines";
/// The one draft of the whole station, in clear, before drafts were sealed per officer.
const LEGACY_DRAFT_KEY: &str = "draft.tip";
/// Prefix of an officer's sealed draft (`draft.tip.OFFICER_ID`).
const DRAFT_PREFIX: &str = "draft.tip.";
/// A draft larger than this is refused (a tip's content is text, not a file).
const MAX_DRAFT_BYTES: usize = 256 * 1024;

/// Hours a crime tip may wait before it must be transferred (TTLT 01/2017 defaults: 24 h,
/// 48 h where the hamlet is remote).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DeadlineRules {
    pub transfer_hours: u32,
    pub transfer_hours_remote: u32,
}

impl Default for DeadlineRules {
    fn default() -> Self {
        DeadlineRules {
            transfer_hours: 24,
            transfer_hours_remote: 48,
        }
    }
}

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

    /// The signed-in officer's draft of the tip form, as the window last saved it. A draft
    /// left by a version that kept one per station, in clear, is taken over by the first
    /// officer who opens the form, and sealed.
    pub fn draft(&self) -> Result<Option<serde_json::Value>> {
        self.require(binhyen_domain::access::Permission::TipRecord)?;
        if let Some(legacy) = meta_get(&self.conn, LEGACY_DRAFT_KEY)? {
            let draft: serde_json::Value = serde_json::from_str(&legacy)?;
            self.set_draft(Some(&draft))?;
            self.conn
                .execute("DELETE FROM meta WHERE key = ?1", [LEGACY_DRAFT_KEY])?;
            return Ok(Some(draft));
        }
        let Some(sealed) = meta_get(&self.conn, &self.draft_key())? else {
            return Ok(None);
        };
        let Some(own) = self.ring.own() else {
            return Ok(None);
        };
        use base64::Engine;
        let plain = base64::engine::general_purpose::STANDARD
            .decode(sealed.as_bytes())
            .ok()
            .and_then(|b| own.unseal(&b).ok());
        match plain {
            Some(p) => Ok(Some(serde_json::from_slice(&p)?)),
            // Sealed to a box key this officer no longer has (a password reset): gone.
            None => Ok(None),
        }
    }

    fn draft_key(&self) -> String {
        format!("{DRAFT_PREFIX}{}", self.session.officer_id)
    }

    /// Keeps the signed-in officer's draft of the tip form (any JSON the window chooses),
    /// sealed to the officer's own box key, or clears it with `None`.
    pub fn set_draft(&self, draft: Option<&serde_json::Value>) -> Result<()> {
        self.require(binhyen_domain::access::Permission::TipRecord)?;
        let key = self.draft_key();
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
                let own = self.ring.own().ok_or_else(|| {
                    StoreError::from(Invalid::one(
                        "draft",
                        "no_box_key",
                        "Chưa lưu được bản nháp: tài khoản chưa có khóa riêng trên máy này; hãy đăng xuất rồi đăng nhập lại.",
                    ))
                })?;
                let sealed = own
                    .public_key()
                    .seal(&mut rand::rngs::OsRng, text.as_bytes())
                    .map_err(|_| StoreError::Io {
                        path: "draft".into(),
                        source: std::io::Error::other("cannot seal the draft"),
                    })?;
                use base64::Engine;
                meta_set(
                    &self.conn,
                    &key,
                    &base64::engine::general_purpose::STANDARD.encode(sealed),
                )
            }
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = ?1", [&key])?;
                Ok(())
            }
        }
    }
}
