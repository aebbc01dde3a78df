//! Activity: the firing of an area's population, a batch of feature maps.
//!
//! Stored channel-major, `[C, N, H, W]`, the layout in which one GEMM covers the whole batch
//! (see `kernels`). Conversions to and from PyTorch's `[N, C, H, W]` and to latent vectors
//! `[N, nz]` happen only at the edges: data in, images out, golden vectors, records.

use ndarray::{Array2, Array4, ArrayView2, ArrayView4, Axis};

/// A batch of feature maps, `[C, N, H, W]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    maps: Array4<f32>,
}

impl Activity {
    /// Wraps channel-major maps `[C, N, H, W]` (copied into standard layout if needed).
    pub fn from_channel_major(maps: Array4<f32>) -> Self {
        let maps = if maps.is_standard_layout() {
            maps
        } else {
            maps.as_standard_layout().into_owned()
        };
        Activity { maps }
    }

    /// From a PyTorch-layout batch `[N, C, H, W]`.
    pub fn from_nchw(batch: ArrayView4<f32>) -> Self {
        Activity {
            maps: batch
                .permuted_axes([1, 0, 2, 3])
                .as_standard_layout()
                .into_owned(),
        }
    }

    /// From latent vectors `[N, nz]`, as `nz` maps of 1×1.
    pub fn from_latent(z: ArrayView2<f32>) -> Self {
        let (n, nz) = z.dim();
        let maps = z
            .t()
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((nz, n, 1, 1));
        Activity {
            maps: maps.expect("nz·n elements"),
        }
    }

    /// Zero activity of the given channel-major shape.
    pub fn zeros(channels: usize, batch: usize, height: usize, width: usize) -> Self {
        Activity {
            maps: Array4::zeros((channels, batch, height, width)),
        }
    }

    /// Rebuilds an activity from a flat channel-major buffer.
    pub fn from_vec(
        channels: usize,
        batch: usize,
        height: usize,
        width: usize,
        data: Vec<f32>,
    ) -> Self {
        let maps = Array4::from_shape_vec((channels, batch, height, width), data);
        Activity {
            maps: maps.expect("buffer length matches the shape"),
        }
    }

    /// The maps, `[C, N, H, W]`.
    pub fn maps(&self) -> ArrayView4<'_, f32> {
        self.maps.view()
    }

    /// Consumes the activity, returning its channel-major maps.
    pub fn into_maps(self) -> Array4<f32> {
        self.maps
    }

    /// Consumes the activity, returning its values in channel-major order.
    pub fn into_vec(self) -> Vec<f32> {
        let len = self.maps.len();
        match self.maps.into_raw_vec_and_offset() {
            (values, None | Some(0)) if values.len() == len => values,
            (values, offset) => values[offset.unwrap_or(0)..][..len].to_vec(),
        }
    }

    /// The values in channel-major order.
    pub fn as_slice(&self) -> &[f32] {
        self.maps.as_slice().expect("standard layout")
    }

    /// Mutable values in channel-major order.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        self.maps.as_slice_mut().expect("standard layout")
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.maps.dim().0
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.maps.dim().1
    }

    /// Map height.
    pub fn height(&self) -> usize {
        self.maps.dim().2
    }

    /// Map width.
    pub fn width(&self) -> usize {
        self.maps.dim().3
    }

    /// PyTorch layout `[N, C, H, W]`.
    pub fn to_nchw(&self) -> Array4<f32> {
        self.maps
            .view()
            .permuted_axes([1, 0, 2, 3])
            .as_standard_layout()
            .into_owned()
    }

    /// For 1×1 maps: the latent vectors `[N, C]`.
    pub fn to_latent(&self) -> Array2<f32> {
        assert_eq!(
            (self.height(), self.width()),
            (1, 1),
            "latent vectors need 1x1 maps"
        );
        self.maps
            .index_axis(Axis(3), 0)
            .index_axis(Axis(2), 0)
            .t()
            .as_standard_layout()
            .into_owned()
    }

    /// One row per image, `[N, C·H·W]`, each row in PyTorch's `[C, H, W]` order.
    pub fn to_rows(&self) -> Array2<f32> {
        let (c, n, h, w) = self.maps.dim();
        self.to_nchw()
            .into_shape_with_order((n, c * h * w))
            .expect("n·c·h·w elements")
    }

    /// The inverse of [`Activity::to_rows`]: rows `[N, C·H·W]` as maps of `channels × height ×
    /// width`.
    pub fn from_rows(rows: ArrayView2<f32>, channels: usize, height: usize, width: usize) -> Self {
        let n = rows.nrows();
        assert_eq!(rows.ncols(), channels * height * width, "row length");
        let nchw = rows
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((n, channels, height, width))
            .expect("n·c·h·w elements");
        Activity::from_nchw(nchw.view())
    }

    /// Multiplies every map of every image by `mask` (`[H, W]`): occlusion.
    pub fn mask_pixels(&mut self, mask: ArrayView2<f32>) {
        assert_eq!(
            mask.dim(),
            (self.height(), self.width()),
            "mask and maps differ in size"
        );
        let mask = mask.as_standard_layout();
        let mask = mask.as_slice().expect("standard layout");
        for map in self.as_mut_slice().chunks_mut(mask.len()) {
            map.iter_mut().zip(mask).for_each(|(v, &m)| *v *= m);
        }
    }

    /// `self += other`, elementwise.
    pub fn add_assign(&mut self, other: &Activity) {
        assert_eq!(
            self.maps.dim(),
            other.maps.dim(),
            "adding activities of different shapes"
        );
        self.maps += &other.maps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    #[test]
    fn nchw_round_trip_and_layout() {
        let x = Array::from_iter(0..2 * 3 * 2 * 2)
            .mapv(|v| v as f32)
            .into_shape_with_order((2, 3, 2, 2))
            .unwrap();
        let a = Activity::from_nchw(x.view());
        assert_eq!((a.channels(), a.batch()), (3, 2));
        // channel 1 of image 0 starts right after channel 0 of both images
        assert_eq!(a.as_slice()[8], x[[0, 1, 0, 0]]);
        assert_eq!(a.to_nchw(), x);
    }

    #[test]
    fn latent_round_trip() {
        let z = Array::from_iter(0..6)
            .mapv(|v| v as f32)
            .into_shape_with_order((2, 3))
            .unwrap();
        let a = Activity::from_latent(z.view());
        assert_eq!(a.maps().dim(), (3, 2, 1, 1));
        assert_eq!(a.to_latent(), z);
    }
}
