//! Online groups of the hamlets (Zalo, Facebook…) with their member counts over time, and
//! the unit's own pages with their periodic figures (followers, posts, views, questions
//! answered). Counts are dated; a second count on the same day corrects the first.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use ts_rs::TS;

use binhyen_domain::roster::Platform;
use binhyen_domain::text::normalize_line;
use binhyen_domain::{FieldError, Invalid};

use crate::audit::Action;
use crate::roster::{
    insert_channel, insert_channel_metric, insert_group, insert_group_count, update_record, Metrics,
};
use crate::sql::get_enum;
use crate::{Result, Station, StoreError};

/// One dated member count of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MemberCount {
    pub on: NaiveDate,
    pub members: u32,
}

/// A hamlet's online group with its member counts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct GroupView {
    pub id: String,
    pub hamlet_id: String,
    pub hamlet_name: String,
    pub platform: Platform,
    pub name: String,
    pub url: Option<String>,
    pub counts: Vec<MemberCount>,
}

/// A new online group, as the form gives it.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct GroupInput {
    pub hamlet_id: String,
    pub platform: Platform,
    pub name: String,
    #[serde(default)]
    #[ts(optional)]
    pub url: Option<String>,
}

/// One dated set of a page's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ChannelFigures {
    pub on: NaiveDate,
    pub followers: u32,
    pub posts: u32,
    #[ts(type = "number")]
    pub views: u64,
    pub questions_answered: u32,
}

/// One of the unit's pages with its figures, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ChannelView {
    pub id: String,
    pub platform: Platform,
    pub name: String,
    pub url: Option<String>,
    pub figures: Vec<ChannelFigures>,
}

/// A new page of the unit.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct ChannelInput {
    pub platform: Platform,
    pub name: String,
    #[serde(default)]
    #[ts(optional)]
    pub url: Option<String>,
}

fn check_name(name: &str, url: Option<&str>) -> Result<(String, Option<String>)> {
    let name = normalize_line(name);
    let url = url.map(normalize_line).filter(|u| !u.is_empty());
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::new(
            "name",
            "required",
            "Hãy nhập tên nhóm hoặc trang.",
        ));
    } else if name.chars().count() > 200 {
        errors.push(FieldError::new(
            "name",
            "too_long",
            "Tên quá dài (tối đa 200 ký tự).",
        ));
    }
    if let Some(u) = &url {
        if !(u.starts_with("https://") || u.starts_with("http://"))
            || u.contains(char::is_whitespace)
        {
            errors.push(FieldError::new(
                "url",
                "bad_url",
                "Địa chỉ phải bắt đầu bằng https:// (ví dụ https://zalo.me/g/abc).",
            ));
        }
    }
    if errors.is_empty() {
        Ok((name, url))
    } else {
        Err(Invalid(errors).into())
    }
}

fn not_found(what: &'static str, key: &str) -> StoreError {
    StoreError::NotFound {
        what,
        key: key.into(),
    }
}

impl Station {
    /// The commune's online groups, by hamlet (Vietnamese order) then name.
    pub fn list_groups(&self) -> Result<Vec<GroupView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT g.id, g.hamlet_id, h.name, g.platform, g.name, g.url
               FROM online_groups g JOIN hamlets h ON h.id = g.hamlet_id
              WHERE h.unit_code = ?1",
        )?;
        let mut groups = stmt
            .query_map([&self.info().unit_code], |r| {
                Ok(GroupView {
                    id: r.get(0)?,
                    hamlet_id: r.get(1)?,
                    hamlet_name: r.get(2)?,
                    platform: get_enum(r, 3, Platform::parse)?,
                    name: r.get(4)?,
                    url: r.get(5)?,
                    counts: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut counts = self.conn.prepare_cached(
            "SELECT counted_on, members FROM group_member_counts WHERE group_id = ?1 ORDER BY counted_on",
        )?;
        for g in &mut groups {
            g.counts = counts
                .query_map([&g.id], |r| {
                    let on: String = r.get(0)?;
                    Ok(MemberCount {
                        on: on.parse().unwrap_or_default(),
                        members: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
        }
        groups.sort_by(|a, b| {
            binhyen_domain::text::vi_cmp(&a.hamlet_name, &b.hamlet_name)
                .then_with(|| binhyen_domain::text::vi_cmp(&a.name, &b.name))
        });
        Ok(groups)
    }

    /// Adds an online group to a hamlet of this commune.
    pub fn add_group(&mut self, input: &GroupInput, now: DateTime<Utc>) -> Result<String> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        let (name, url) = check_name(&input.name, input.url.as_deref())?;
        let unit = self.info().unit_code.clone();
        let mut w = self.writer(now)?;
        let found: Option<String> = w
            .conn()
            .query_row(
                "SELECT id FROM hamlets WHERE id = ?1 AND unit_code = ?2",
                [&input.hamlet_id, &unit],
                |r| r.get(0),
            )
            .optional()?;
        let hamlet = found.ok_or_else(|| not_found("thôn", &input.hamlet_id))?;
        let id = insert_group(
            &mut w,
            &hamlet,
            input.platform.as_str(),
            &name,
            url.as_deref(),
            None,
        )?;
        w.audit(Action::RosterChange, Some(&id), json!({ "group": "add" }))?;
        w.commit()?;
        Ok(id)
    }

    /// Records a group's member count on a day; a second count that day replaces the first.
    pub fn record_group_count(
        &mut self,
        group_id: &str,
        on: NaiveDate,
        members: u32,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        if on > binhyen_domain::time::vn_today(now) {
            return Err(Invalid::one(
                "on",
                "future",
                "Ngày đếm ở tương lai; hãy kiểm tra lại ngày.",
            )
            .into());
        }
        let unit = self.info().unit_code.clone();
        let mut w = self.writer(now)?;
        let known: Option<String> = w
            .conn()
            .query_row(
                "SELECT g.id FROM online_groups g JOIN hamlets h ON h.id = g.hamlet_id
                  WHERE g.id = ?1 AND h.unit_code = ?2",
                [group_id, &unit],
                |r| r.get(0),
            )
            .optional()?;
        known.ok_or_else(|| not_found("nhóm", group_id))?;
        let existing: Option<(String, u32)> = w
            .conn()
            .query_row(
                "SELECT id, members FROM group_member_counts WHERE group_id = ?1 AND counted_on = ?2",
                [group_id, &on.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match existing {
            Some((_, m)) if m == members => return Ok(()),
            Some((id, _)) => {
                let mut fields = Map::new();
                fields.insert("members".into(), Value::from(members));
                update_record(
                    &mut w,
                    "group_member_count",
                    "group_member_counts",
                    &id,
                    fields,
                )?;
            }
            None => {
                insert_group_count(&mut w, group_id, on, members)?;
            }
        }
        w.audit(
            Action::RosterChange,
            Some(group_id),
            json!({ "group_count": on.to_string() }),
        )?;
        w.commit()
    }

    /// The unit's own pages, by name.
    pub fn list_channels(&self) -> Result<Vec<ChannelView>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, platform, name, url FROM channels WHERE unit_code = ?1")?;
        let mut channels = stmt
            .query_map([&self.info().unit_code], |r| {
                Ok(ChannelView {
                    id: r.get(0)?,
                    platform: get_enum(r, 1, Platform::parse)?,
                    name: r.get(2)?,
                    url: r.get(3)?,
                    figures: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut figures = self.conn.prepare_cached(
            "SELECT recorded_on, followers, posts, views, questions_answered FROM channel_metrics
              WHERE channel_id = ?1 ORDER BY recorded_on",
        )?;
        for c in &mut channels {
            c.figures = figures
                .query_map([&c.id], |r| {
                    let on: String = r.get(0)?;
                    Ok(ChannelFigures {
                        on: on.parse().unwrap_or_default(),
                        followers: r.get(1)?,
                        posts: r.get(2)?,
                        views: r.get::<_, i64>(3)?.max(0) as u64,
                        questions_answered: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
        }
        channels.sort_by(|a, b| binhyen_domain::text::vi_cmp(&a.name, &b.name));
        Ok(channels)
    }

    /// Adds one of the unit's pages.
    pub fn add_channel(&mut self, input: &ChannelInput, now: DateTime<Utc>) -> Result<String> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        let (name, url) = check_name(&input.name, input.url.as_deref())?;
        let unit = self.info().unit_code.clone();
        let mut w = self.writer(now)?;
        let id = insert_channel(
            &mut w,
            &unit,
            input.platform.as_str(),
            &name,
            url.as_deref(),
        )?;
        w.audit(Action::RosterChange, Some(&id), json!({ "channel": "add" }))?;
        w.commit()?;
        Ok(id)
    }

    /// Records a page's figures on a day; figures already recorded that day are replaced.
    pub fn record_channel_figures(
        &mut self,
        channel_id: &str,
        figures: &ChannelFigures,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.require(binhyen_domain::access::Permission::RosterManage)?;
        if figures.on > binhyen_domain::time::vn_today(now) {
            return Err(Invalid::one(
                "on",
                "future",
                "Ngày ghi số liệu ở tương lai; hãy kiểm tra lại ngày.",
            )
            .into());
        }
        let unit = self.info().unit_code.clone();
        let mut w = self.writer(now)?;
        let known: Option<String> = w
            .conn()
            .query_row(
                "SELECT id FROM channels WHERE id = ?1 AND unit_code = ?2",
                [channel_id, &unit],
                |r| r.get(0),
            )
            .optional()?;
        known.ok_or_else(|| not_found("trang", channel_id))?;
        let on = figures.on.to_string();
        let existing: Option<(String, ChannelFigures)> = w
            .conn()
            .query_row(
                "SELECT id, followers, posts, views, questions_answered FROM channel_metrics
                  WHERE channel_id = ?1 AND recorded_on = ?2",
                [channel_id, &on],
                |r| {
                    Ok((
                        r.get(0)?,
                        ChannelFigures {
                            on: figures.on,
                            followers: r.get(1)?,
                            posts: r.get(2)?,
                            views: r.get::<_, i64>(3)?.max(0) as u64,
                            questions_answered: r.get(4)?,
                        },
                    ))
                },
            )
            .optional()?;
        match existing {
            Some((_, old)) if old == *figures => return Ok(()),
            Some((id, old)) => {
                let mut fields = Map::new();
                if old.followers != figures.followers {
                    fields.insert("followers".into(), Value::from(figures.followers));
                }
                if old.posts != figures.posts {
                    fields.insert("posts".into(), Value::from(figures.posts));
                }
                if old.views != figures.views {
                    fields.insert("views".into(), Value::from(figures.views));
                }
                if old.questions_answered != figures.questions_answered {
                    fields.insert(
                        "questions_answered".into(),
                        Value::from(figures.questions_answered),
                    );
                }
                update_record(&mut w, "channel_metric", "channel_metrics", &id, fields)?;
            }
            None => {
                let m = Metrics {
                    followers: figures.followers,
                    posts: figures.posts,
                    views: figures.views,
                    questions_answered: figures.questions_answered,
                };
                insert_channel_metric(&mut w, channel_id, figures.on, &m)?;
            }
        }
        w.audit(
            Action::RosterChange,
            Some(channel_id),
            json!({ "channel_figures": on }),
        )?;
        w.commit()
    }
}
