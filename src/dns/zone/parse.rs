//! RFC 1035 master-file reader (placeholder: being written).

use std::path::Path;

use hickory_proto::rr::Name;

use super::{ZoneError, ZoneResult};

pub(super) fn parse_zone(path: &Path, _origin: &Name) -> ZoneResult {
    Err(vec![ZoneError {
        file: path.to_owned(),
        line: 0,
        message: "zone parsing is not implemented yet".to_owned(),
    }])
}
