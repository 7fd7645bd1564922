//! Writes `tests/fixtures/v1/`: a station at schema version 1 with a few tips and a roster,
//! opened by the upgrade test. Run once when the fixture is (re)made; the files are committed.

use binhyen_store::{InitOptions, Station};
use chrono::{TimeZone, Utc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let _ = std::fs::remove_dir_all(&dir);
    let now = Utc
        .with_ymd_and_hms(2025, 9, 1, 3, 0, 0)
        .single()
        .ok_or("bad date")?;
    let opts = InitOptions {
        unit_code: "24280".into(),
        passphrase: "fixture-passphrase".into(),
        device_no: 1,
        demo: false,
    };
    let mut station = Station::init_with_schema(&dir, &opts, now, 1)?;
    station.import_roster("Loại,Thôn/Buôn/TDP,Số hộ,Nhân khẩu,Họ tên,Vai trò,Điện thoại\nBuôn,Ea Kmar,143,610,Y Bliêng Niê,Trưởng buôn,0912345678\n".as_bytes(), false, now)?;
    for content in [
        "Tố giác trộm bò ở Buôn Ea Kmar",
        "Hỏi thủ tục cấp lại căn cước",
    ] {
        let input = serde_json::from_value(
            serde_json::json!({"content": content, "hamlet": "Buôn Ea Kmar", "category": "crime_denunciation"}),
        )?;
        station.add_tip(&input, now)?;
    }
    drop(station);
    println!("wrote {}", dir.display());
    Ok(())
}
