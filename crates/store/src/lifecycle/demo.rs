//! Demo data for a station: hamlets and buôn with their groups, roster people, officers,
//! the unit's channels with a year of metrics, and ~300 tips over the past twelve months.
//! Deterministic for a given unit and `now`, so demos and tests see the same station.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use binhyen_domain::roster::{HamletKind, PersonRole};
use binhyen_domain::tip::{Category, Channel, NewTip, Reporter, Status, Urgency};

use crate::accounts::insert_account;
use crate::keys::DEMO_PASSPHRASE;
use crate::roster::{
    insert_channel, insert_channel_metric, insert_group, insert_group_count, insert_hamlet,
    insert_person, Metrics,
};
use crate::tips::{insert_tip, set_status};
use crate::{Result, Station, StoreError};
use binhyen_domain::access::Role;

const HAMLETS: &[(HamletKind, &str, u32, bool)] = &[
    (HamletKind::Buon, "Buôn Ea Mdroh", 212, true),
    (HamletKind::Buon, "Buôn Cuôr Kniê", 185, true),
    (HamletKind::Buon, "Buôn Ko Ênh", 164, false),
    (HamletKind::Buon, "Buôn Ea Kmar", 143, true),
    (HamletKind::Buon, "Buôn Drai", 121, false),
    (HamletKind::Thon, "Thôn 1", 236, false),
    (HamletKind::Thon, "Thôn 2", 198, false),
    (HamletKind::Thon, "Thôn 3", 177, false),
    (HamletKind::Thon, "Thôn Tân Lập", 254, false),
    (HamletKind::Thon, "Thôn Hòa Bình", 203, false),
    (HamletKind::Thon, "Thôn Đoàn Kết", 168, false),
    (HamletKind::ToDanPho, "Tổ dân phố 1", 312, false),
    (HamletKind::ToDanPho, "Tổ dân phố 2", 287, false),
];

const EDE_NAMES: &[&str] = &[
    "Y Bliêng Niê",
    "H'Nga Ayun",
    "Y Khiêm Mlô",
    "H'Linh Byă",
    "Y Thuột Êban",
    "H'Duyên Knul",
    "Y Sơn Buôn Yă",
    "Ama Thuốt",
    "Y Jút Hwing",
    "H'Loan Adrơng",
];
const KINH_NAMES: &[&str] = &[
    "Nguyễn Văn Hùng",
    "Trần Thị Lan",
    "Lê Đình Phúc",
    "Phạm Văn Đức",
    "Hoàng Thị Mai",
    "Võ Minh Tuấn",
    "Đặng Quốc Huy",
    "Bùi Thị Hoa",
    "Đỗ Văn Nam",
    "Ngô Thị Thanh Hương",
    "Huỳnh Văn Ân",
    "Phan Thị Ánh",
    "Vũ Đức Thắng",
    "Dương Văn Ơn",
    "Lý Thị Ưng",
];
/// The demo station's officers and their accounts (all with the demo password). The first
/// is the account the demo station is created with.
pub const DEMO_OFFICERS: &[(&str, &str, &str, Role)] = &[
    (
        "Nguyễn Hữu Thành",
        "Thiếu tá, Trưởng Công an xã",
        "truong",
        Role::Chief,
    ),
    (
        "Y Phôn Ksơr",
        "Đại úy, Phó Trưởng Công an xã",
        "yphon",
        Role::Chief,
    ),
    (
        "Trần Quang Vinh",
        "Thượng úy, Cảnh sát khu vực",
        "vinh",
        Role::Officer,
    ),
    (
        "H'Yăm Êban",
        "Trung úy, Cảnh sát khu vực",
        "hyam",
        Role::Officer,
    ),
    ("Lê Văn Định", "Công an viên", "dinh", Role::Officer),
    ("Phạm Thị Hoa", "Cán bộ kỹ thuật", "quantri", Role::Admin),
];

/// (category, channel weights, templates). `{h}` is a hamlet, `{p}` the province.
const TEMPLATES: &[(Category, &[&str])] = &[
    (Category::SecurityOrder, &[
        "Nhóm thanh niên khoảng 10 người tụ tập, mang theo dao, gậy gần trường mẫu giáo {h} lúc gần 23 giờ, gây mất trật tự.",
        "Phản ánh tụ tập đánh bạc (đá gà ăn tiền) tại rẫy cà phê phía sau {h} vào chiều chủ nhật.",
        "Quán karaoke ở {h} mở nhạc lớn sau 22 giờ, nhiều lần nhắc nhở không chấp hành.",
        "Thanh niên chạy xe máy lạng lách, bốc đầu trên tỉnh lộ đoạn qua {h} vào ban đêm.",
        "Phản ánh có người lạ thường xuyên lui tới khu rẫy {h}, nghi mua bán ma túy.",
        "Hai gia đình ở {h} xô xát vì tranh chấp ranh giới đất rẫy, có người bị thương nhẹ.",
        "Phản ánh đánh bạc tại chợ {h} vào sáng sớm, có nhiều người tham gia.",
    ]),
    (Category::CrimeDenunciation, &[
        "Tố giác đối tượng trộm 2 con bò của gia đình tôi ở {h} trong đêm, đã thấy vết xe máy kéo.",
        "Tố giác đối tượng cho vay nặng lãi ở {h}, lãi suất 10%/tháng, đe dọa người vay.",
        "Tố giác người hàng xóm ở {h} trộm 5 bao cà phê nhân trong kho.",
        "Tố giác đối tượng cố ý gây thương tích cho em trai tôi tại quán nước {h}.",
        "Tố giác đối tượng chặt phá rừng phòng hộ giáp ranh {h}, {p}.",
    ]),
    (Category::CrimeReport, &[
        "Tin báo: người dân {h} bị lừa đảo qua mạng, đối tượng giả danh công an yêu cầu chuyển 50 triệu đồng.",
        "Tin báo: phát hiện xe tải chở gỗ không rõ nguồn gốc đi qua {h} lúc 2 giờ sáng.",
        "Tin báo mất trộm xe máy Honda Wave trước nhà văn hóa {h}.",
        "Tin báo: cửa hàng tạp hóa ở {h} bán pháo nổ trái phép dịp Tết.",
        "Tin báo: nhóm đối tượng lạ đến {h} mời người dân tham gia đa cấp, thu tiền đặt cọc.",
    ]),
    (Category::AdminQuestion, &[
        "Hỏi thủ tục cấp lại thẻ căn cước bị mất, cần mang những giấy tờ gì?",
        "Hỏi cách đăng ký thường trú cho con mới sinh qua VNeID.",
        "Hỏi thủ tục đăng ký tạm trú cho công nhân thuê trọ ở {h}.",
        "Hỏi quy định về phòng cháy chữa cháy đối với quán karaoke nhỏ.",
        "Hỏi cách kích hoạt tài khoản định danh điện tử mức 2 cho người cao tuổi.",
        "Hỏi thủ tục xác nhận thông tin cư trú để làm hồ sơ vay vốn.",
        "Hỏi giấy tờ cần thiết khi đăng ký xe máy mua lại.",
    ]),
    (Category::Ordnance, &[
        "Người dân phát hiện một quả bom còn sót lại sau chiến tranh khi cày rẫy cà phê ở {h}.",
        "Trẻ em nhặt được vật nghi là lựu đạn ở bờ suối gần {h}, đã được người lớn cất giữ.",
        "Phát hiện đầu đạn pháo han gỉ khi đào móng nhà tại {h}, {p}.",
    ]),
    (Category::Misinformation, &[
        "Tài khoản Facebook đăng tin sai sự thật về dịch bệnh tại {h}, gây hoang mang trong nhân dân.",
        "Nhóm Zalo {h} lan truyền tin giả về việc thu hồi đất làm sân bay.",
        "Phản ánh clip cắt ghép xúc phạm cán bộ xã được chia sẻ trong nhóm Zalo {h}.",
    ]),
    (Category::Other, &[
        "Phản ánh đèn đường khu vực {h} bị hỏng nhiều ngày, ban đêm tối, dễ xảy ra trộm cắp.",
        "Đề nghị công an xã tuyên truyền phòng chống lừa đảo qua mạng cho người dân {h}.",
        "Phản ánh chó thả rông cắn người ở {h}.",
    ]),
];

const CATEGORY_WEIGHTS: &[(Category, u32)] = &[
    (Category::SecurityOrder, 30),
    (Category::AdminQuestion, 28),
    (Category::CrimeReport, 13),
    (Category::CrimeDenunciation, 11),
    (Category::Misinformation, 7),
    (Category::Ordnance, 3),
    (Category::Other, 8),
];

const CHANNEL_WEIGHTS: &[(Channel, u32)] = &[
    (Channel::Zalo, 34),
    (Channel::Phone, 18),
    (Channel::InPerson, 16),
    (Channel::Facebook, 14),
    (Channel::Vneid, 6),
    (Channel::Hotline, 6),
    (Channel::Letter, 4),
    (Channel::Other, 2),
];

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut pick = rng.gen_range(0..total);
    for (item, w) in items {
        if pick < *w {
            return *item;
        }
        pick -= w;
    }
    items[0].0
}

fn phone(rng: &mut StdRng) -> String {
    let prefix = [
        "091", "094", "098", "097", "086", "035", "038", "033", "088", "077",
    ]
    .choose(rng)
    .copied()
    .unwrap_or("091");
    format!("+84{}{:07}", &prefix[1..], rng.gen_range(0..10_000_000))
}

fn month_starts(now: DateTime<Utc>, months: u32) -> Vec<NaiveDate> {
    let today = now.date_naive();
    let mut first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let mut out = Vec::new();
    for _ in 0..months {
        out.push(first);
        first = first
            .pred_opt()
            .and_then(|d| NaiveDate::from_ymd_opt(d.year(), d.month(), 1))
            .unwrap_or(first);
    }
    out.reverse();
    out
}

/// Fills a new station with demo data.
pub fn fill(station: &mut Station, now: DateTime<Utc>) -> Result<()> {
    let unit = station.info().unit_code.clone();
    let device = station.info().device_no;
    let commune = station.info().unit_name.clone();
    let province = station.info().province_name.clone().unwrap_or_default();
    let seed = unit.bytes().fold(0xB1_u64, |a, b| {
        a.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let months = month_starts(now, 12);
    let first = station.session().username.clone();
    let key = station.key.clone();
    let keys_path = station.dir().join(crate::station::KEYS_FILE);
    let mut keys = crate::keys::KeyFile::read(&keys_path)?;
    let first_id = station.session().officer_id.clone();
    let station_id = station.info().station_id.to_string();
    let sealer = station.identity_sealer(now)?;
    let mut inserts = crate::tips::Inserts {
        sealer: Some(sealer),
        ..Default::default()
    };
    let mut w = station.writer(now)?;

    // Those who receive and handle tips: every chief and officer.
    let mut handlers: Vec<String> = Vec::new();
    for (name, rank, username, role) in DEMO_OFFICERS {
        let phone = phone(&mut rng);
        if *username == first {
            if role.allows(binhyen_domain::access::Permission::TipEdit) {
                handlers.push(first_id.clone());
            }
            continue;
        }
        let id = insert_account(
            &mut w,
            &unit,
            username,
            name,
            *role,
            Some(rank),
            Some(&phone),
        )?;
        let own_box = crate::keys::new_box_secret();
        crate::identity::publish_officer_key(&mut w, &unit, &station_id, Some(&id), &own_box)?;
        keys.set_password(&key, username, &id, DEMO_PASSPHRASE, false, &own_box)?;
        if role.allows(binhyen_domain::access::Permission::TipEdit) {
            handlers.push(id);
        }
    }

    let mut hamlets: Vec<(String, String)> = Vec::new();
    for (i, (kind, name, households, remote)) in HAMLETS.iter().enumerate() {
        let population = households * 4 + rng.gen_range(0..households / 2);
        let id = insert_hamlet(
            &mut w,
            &unit,
            *kind,
            name,
            Some(*households),
            Some(population),
            *remote,
        )?;
        let ede = *kind == HamletKind::Buon;
        let pool = if ede { EDE_NAMES } else { KINH_NAMES };
        let head = pool[i % pool.len()];
        let head_phone = phone(&mut rng);
        let head_id = insert_person(
            &mut w,
            &unit,
            Some((&id, name)),
            head,
            PersonRole::HamletHead,
            Some(&head_phone),
            None,
        )?;
        for j in 0..2 {
            let member = pool[(i * 3 + j + 1) % pool.len()];
            if member != head {
                insert_person(
                    &mut w,
                    &unit,
                    Some((&id, name)),
                    member,
                    PersonRole::SecurityTeam,
                    Some(&phone(&mut rng)),
                    None,
                )?;
            }
        }
        let group = insert_group(
            &mut w,
            &id,
            "zalo",
            &format!("Zalo {name} – {commune}"),
            None,
            Some(&head_id),
        )?;
        let mut members = households * 6 / 10;
        for m in &months {
            insert_group_count(&mut w, &group, *m, members)?;
            members += rng.gen_range(0..12);
        }
        if i % 4 == 0 {
            let fb = insert_group(
                &mut w,
                &id,
                "facebook",
                &format!("Cộng đồng {name}"),
                Some("https://www.facebook.com/groups/"),
                None,
            )?;
            insert_group_count(&mut w, &fb, months[months.len() - 1], households / 2)?;
        }
        hamlets.push((id, name.to_string()));
    }
    // The same man entered in two hamlets with and without diacritics: the roster screen
    // flags such pairs.
    insert_person(
        &mut w,
        &unit,
        Some((&hamlets[5].0, &hamlets[5].1)),
        "Nguyen Van Hung",
        PersonRole::GroupAdmin,
        None,
        Some("Quản trị nhóm Zalo"),
    )?;

    for (platform, name) in [
        ("facebook", format!("Công an {commune}")),
        ("zalo", format!("Công an {commune} – Zalo OA")),
    ] {
        let ch = insert_channel(&mut w, &unit, platform, &name, None)?;
        let (mut followers, mut posts, mut views) = (
            rng.gen_range(800..2_000),
            rng.gen_range(40..120),
            20_000_u64,
        );
        for m in &months {
            followers += rng.gen_range(40..220);
            posts += rng.gen_range(8..30);
            views += rng.gen_range(3_000..25_000);
            let metrics = Metrics {
                followers,
                posts,
                views,
                questions_answered: rng.gen_range(5..40),
            };
            insert_channel_metric(&mut w, &ch, *m, &metrics)?;
        }
    }

    let mut tips: Vec<NewTip> = (0..300)
        .map(|_| {
            let age_minutes = rng.gen_range(30..365 * 24 * 60);
            let received_at = now - Duration::minutes(age_minutes);
            let category = weighted(&mut rng, CATEGORY_WEIGHTS);
            let templates = TEMPLATES
                .iter()
                .find(|(c, _)| *c == category)
                .map(|(_, t)| *t)
                .unwrap_or(&[]);
            let (_, hamlet) = &hamlets[rng.gen_range(0..hamlets.len())];
            let content = templates
                .choose(&mut rng)
                .map(|t| t.replace("{h}", hamlet).replace("{p}", &province))
                .unwrap_or_default();
            let channel = weighted(&mut rng, CHANNEL_WEIGHTS);
            let urgency = match category {
                Category::Ordnance => Urgency::Critical,
                Category::SecurityOrder | Category::CrimeDenunciation if rng.gen_bool(0.3) => {
                    Urgency::Urgent
                }
                _ => Urgency::Normal,
            };
            let reporter = (rng.gen_bool(0.45) && category != Category::AdminQuestion).then(|| {
                let pool = if rng.gen_bool(0.4) {
                    EDE_NAMES
                } else {
                    KINH_NAMES
                };
                Reporter {
                    name: pool.choose(&mut rng).map(|s| s.to_string()),
                    phone: Some(phone(&mut rng)),
                    id_number: None,
                    address: Some(hamlet.clone()),
                    secret: matches!(
                        category,
                        Category::CrimeDenunciation | Category::CrimeReport
                    ) && rng.gen_bool(0.6),
                }
            });
            NewTip {
                content,
                category,
                channel,
                received_at,
                hamlet: Some(hamlet.clone()),
                address: None,
                latitude: None,
                longitude: None,
                urgency,
                reporter,
            }
        })
        .collect();
    tips.sort_by_key(|t| t.received_at);

    let mut last_crime: Option<String> = None;
    for tip in &tips {
        let officer = handlers.choose(&mut rng).map(String::as_str);
        let id = insert_tip(
            &mut w,
            &unit,
            device,
            officer,
            tip,
            Status::Received,
            &mut inserts,
        )?
        .to_string();
        if matches!(
            tip.category,
            Category::CrimeReport | Category::CrimeDenunciation
        ) {
            last_crime = Some(id.clone());
        }
        let age = now - tip.received_at;
        let step = |h: i64| tip.received_at + Duration::hours(h);
        let path: &[(Status, Option<&str>)] = if rng.gen_bool(0.03) && age > Duration::days(2) {
            &[(
                Status::Rejected,
                Some("Trùng với nguồn tin đã tiếp nhận trước đó."),
            )]
        } else if age < Duration::days(2) {
            if rng.gen_bool(0.5) {
                &[]
            } else {
                &[(Status::Verifying, None)]
            }
        } else {
            match tip.category {
                Category::AdminQuestion => {
                    &[(Status::Resolved, Some("Đã hướng dẫn người dân qua Zalo."))]
                }
                Category::CrimeDenunciation | Category::CrimeReport | Category::Ordnance => {
                    if age < Duration::days(10) && rng.gen_bool(0.4) {
                        &[(Status::Verifying, None)]
                    } else {
                        &[
                            (Status::Verifying, None),
                            (
                                Status::Transferred,
                                Some("Đã chuyển Cơ quan CSĐT Công an tỉnh."),
                            ),
                        ]
                    }
                }
                _ => {
                    if age < Duration::days(10) && rng.gen_bool(0.5) {
                        &[(Status::Verifying, None)]
                    } else {
                        &[
                            (Status::Verifying, None),
                            (
                                Status::Resolved,
                                Some("Đã xác minh, nhắc nhở, lập biên bản."),
                            ),
                            (Status::Closed, None),
                        ]
                    }
                }
            }
        };
        let mut from = Status::Received;
        for (i, (to, note)) in path.iter().enumerate() {
            let at = step(4 + 20 * i as i64).min(now);
            set_status(&mut w, &id, from, *to, at, *note)?;
            from = *to;
        }
    }
    // The latest crime tip comes with a photo of the scene, as many do.
    if let Some(id) = last_crime {
        let photo = include_bytes!("../../data/demo-hien-truong.png").to_vec();
        let file = binhyen_domain::attachment::validate(0, "ảnh hiện trường.png", photo)
            .map_err(|e| StoreError::Invalid(binhyen_domain::Invalid(vec![e])))?;
        crate::attachments::insert_attachments(&mut w, &id, vec![file], now)?;
    }
    w.commit()?;
    // The accounts are committed before the key file names them.
    keys.write(&keys_path)?;
    // The demo's first account, a chief, grants the commune's key to the demo officers.
    station.grant_all_waiting(now)?;
    tracing::info!(unit = %unit, tips = tips.len(), "demo data written");
    Ok(())
}
