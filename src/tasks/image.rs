//! Image tasks: `mnist_binary` and `cifar10_binary` (engine.md §3).
//!
//! Recipe, in this fixed order (every step deterministic, every draw from [`Rng`]):
//! 1. candidates = indices (in dataset order) of images of the task's two classes;
//!    `mnist_binary`: digits 0 and 1, label 1 = digit 1; `cifar10_binary`: the pair
//!    [`cifar_pair`]`(task_id / 100)`, label 1 = the higher class id;
//! 2. sample `min(n_samples, candidates)` of them without replacement
//!    ([`Rng::sample_indices`]): MNIST with `Rng::new(data_seed)`; CIFAR (which has no
//!    data seed) with `Rng::new(split_seed)`, whose stream then continues into step 6;
//! 3. pixels / 255 (`f32`), projected by a Gaussian matrix `pixels × input_dim` drawn
//!    row-major (pixel-major) from `Rng::new(projection_seed)`, each column divided by its
//!    L2 norm (computed in `f64`); per-row sums in pixel order, in `f32`;
//! 4. (zero pixels are skipped: adding `0·w` to a sum never changes it);
//! 5. standardise each feature with the mean and population std (+1e-6) of all sampled
//!    rows, computed in `f64` in row order;
//! 6. shuffle the row order with the split RNG (Fisher–Yates); the first
//!    `floor(n · train_split)` rows train (see [`ImageSizes::train_count`]), the rest
//!    validate.

use super::datasets::{DatasetKind, Images};
use super::error::TaskError;
use super::{Task, TaskSpec, TaskType};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// How many images an image task samples and how they split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageSizes {
    pub n_samples: usize,
    pub train_split: f64,
}

impl Default for ImageSizes {
    fn default() -> Self {
        ImageSizes {
            n_samples: 2000,
            train_split: 0.5,
        }
    }
}

impl ImageSizes {
    /// Reject sizes that cannot give both a training and a validation example.
    pub fn validate(&self, what: &str) -> Result<(), TaskError> {
        if self.n_samples < 2 {
            return Err(TaskError::Config(format!(
                "{what}.n_samples must be at least 2 (got {})",
                self.n_samples
            )));
        }
        if !(self.train_split > 0.0 && self.train_split < 1.0) {
            return Err(TaskError::Config(format!(
                "{what}.train_split must be strictly between 0 and 1 (got {})",
                self.train_split
            )));
        }
        Ok(())
    }

    /// Training rows out of `n`: `floor(n · train_split)`, at least 1 and at most `n − 1`.
    /// A 1e-9 tolerance keeps splits such as 8/9 of 9000 at 8000 despite rounding.
    pub fn train_count(&self, n: usize) -> usize {
        ((n as f64 * self.train_split + 1e-9).floor() as usize).clamp(1, n.saturating_sub(1).max(1))
    }
}

/// Number of CIFAR-10 class pairs.
pub const CIFAR_PAIRS: usize = 45;

/// The `index`-th CIFAR-10 class pair `(a, b)`, `a < b`, in lexicographic order:
/// 0 → (0,1), 1 → (0,2), …, 8 → (0,9), 9 → (1,2), …, 44 → (8,9).
pub fn cifar_pair(index: usize) -> Option<(u8, u8)> {
    let mut k = 0;
    for a in 0..10u8 {
        for b in a + 1..10 {
            if k == index {
                return Some((a, b));
            }
            k += 1;
        }
    }
    None
}

/// The Gaussian projection `rows × dim`, row-major, columns scaled to unit L2 norm.
pub fn projection(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let raw: Vec<f64> = (0..rows * dim).map(|_| rng.standard_normal()).collect();
    let mut norms = vec![0.0f64; dim];
    for row in raw.chunks_exact(dim) {
        for (n, v) in norms.iter_mut().zip(row) {
            *n += v * v;
        }
    }
    for n in &mut norms {
        *n = n.sqrt();
    }
    raw.chunks_exact(dim)
        .flat_map(|row| row.iter().zip(&norms).map(|(v, n)| (v / n) as f32))
        .collect()
}

/// Build an image task from a loaded dataset.
pub fn build(spec: &TaskSpec, sizes: ImageSizes, images: &Images) -> Result<Task, TaskError> {
    let kind = DatasetKind::for_task(spec.task_type)
        .ok_or_else(|| TaskError::Config(format!("{} is not an image task", spec.task_type)))?;
    if images.source.kind != kind || images.pixel_count != kind.pixel_count() {
        return Err(TaskError::Config(format!(
            "{} needs the {} dataset",
            spec.task_type,
            kind.name()
        )));
    }
    sizes.validate(spec.task_type.as_str())?;
    let dim = spec.input_dim;
    if dim == 0 {
        return Err(TaskError::Config("input_dim must be positive".into()));
    }
    let (neg, pos, detail) = match spec.task_type {
        TaskType::Cifar10Binary => {
            let (a, b) = cifar_pair(spec.task_id as usize / 100).ok_or_else(|| {
                TaskError::Config(format!(
                    "cifar10_binary task id {} is outside the task space (0..4500)",
                    spec.task_id
                ))
            })?;
            (a, b, format!("classes {a} vs {b}"))
        }
        _ => (0, 1, "digits 0 vs 1".to_string()),
    };
    let candidates: Vec<usize> = (0..images.len())
        .filter(|&i| images.labels[i] == neg || images.labels[i] == pos)
        .collect();
    let n = sizes.n_samples.min(candidates.len());
    if n < 2 {
        return Err(TaskError::NotEnoughImages {
            dataset: kind.name(),
            task_id: spec.task_id,
            available: candidates.len(),
            detail,
        });
    }
    let mut split_rng = Rng::new(spec.split_seed.unwrap_or(0));
    let picks = match spec.data_seed {
        Some(seed) => Rng::new(seed).sample_indices(candidates.len(), n),
        None => split_rng.sample_indices(candidates.len(), n),
    };
    let chosen: Vec<usize> = picks.into_iter().map(|k| candidates[k]).collect();

    let proj = projection(images.pixel_count, dim, spec.projection_seed.unwrap_or(0));
    let mut feats = vec![0.0f32; n * dim];
    match dim {
        4 => project_fixed::<4>(images, &chosen, &proj, &mut feats),
        8 => project_fixed::<8>(images, &chosen, &proj, &mut feats),
        16 => project_fixed::<16>(images, &chosen, &proj, &mut feats),
        32 => project_fixed::<32>(images, &chosen, &proj, &mut feats),
        _ => project_any(images, &chosen, &proj, &mut feats, dim),
    }
    standardise(&mut feats, dim);

    let mut order: Vec<usize> = (0..n).collect();
    split_rng.shuffle(&mut order);
    let n_train = sizes.train_count(n);
    let label = |row: usize| (images.labels[chosen[row]] == pos) as u8 as f32;
    let gather = |rows: &[usize]| {
        let mut x = Vec::with_capacity(rows.len() * dim);
        for &r in rows {
            x.extend_from_slice(&feats[r * dim..(r + 1) * dim]);
        }
        (x, rows.iter().map(|&r| label(r)).collect::<Vec<f32>>())
    };
    let (train_x, train_y) = gather(&order[..n_train]);
    let (val_x, val_y) = gather(&order[n_train..]);
    Ok(Task {
        spec: *spec,
        metric: spec.task_type.metric(),
        input_dim: dim,
        train_x,
        train_y,
        val_x,
        val_y,
    })
}

/// `pixel / 255` as `f32`, looked up.
const SCALE: [f32; 256] = {
    let mut t = [0.0f32; 256];
    let mut p = 0;
    while p < 256 {
        t[p] = p as f32 / 255.0;
        p += 1;
    }
    t
};

/// Project the chosen images (rows of `feats`): `Σ_i scale(pixel_i) · proj[i]`, summed in
/// pixel order. A const `D` keeps the accumulators in registers; [`project_any`] does the
/// same arithmetic in the same order for other sizes, so results are identical.
fn project_fixed<const D: usize>(
    images: &Images,
    chosen: &[usize],
    proj: &[f32],
    feats: &mut [f32],
) {
    for (out, &img) in feats.chunks_exact_mut(D).zip(chosen) {
        let mut acc = [0.0f32; D];
        for (&p, w) in images.image(img).iter().zip(proj.chunks_exact(D)) {
            if p == 0 {
                continue;
            }
            let v = SCALE[p as usize];
            let w: &[f32; D] = w.try_into().expect("chunk of D");
            for j in 0..D {
                acc[j] += v * w[j];
            }
        }
        out.copy_from_slice(&acc);
    }
}

fn project_any(images: &Images, chosen: &[usize], proj: &[f32], feats: &mut [f32], dim: usize) {
    for (acc, &img) in feats.chunks_exact_mut(dim).zip(chosen) {
        for (&p, w) in images.image(img).iter().zip(proj.chunks_exact(dim)) {
            if p == 0 {
                continue;
            }
            let v = SCALE[p as usize];
            for (a, &wj) in acc.iter_mut().zip(w) {
                *a += v * wj;
            }
        }
    }
}

/// Standardise each column of a row-major `n × dim` matrix in place.
fn standardise(x: &mut [f32], dim: usize) {
    let n = (x.len() / dim) as f64;
    let mut mean = vec![0.0f64; dim];
    for row in x.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; dim];
    for row in x.chunks_exact(dim) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            let d = v as f64 - m;
            *s += d * d;
        }
    }
    let denom: Vec<f64> = var.iter().map(|s| (s / n).sqrt() + 1e-6).collect();
    for row in x.chunks_exact_mut(dim) {
        for ((v, m), d) in row.iter_mut().zip(&mean).zip(&denom) {
            *v = ((*v as f64 - m) / d) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_order_is_lexicographic() {
        assert_eq!(cifar_pair(0), Some((0, 1)));
        assert_eq!(cifar_pair(8), Some((0, 9)));
        assert_eq!(cifar_pair(9), Some((1, 2)));
        assert_eq!(cifar_pair(44), Some((8, 9)));
        assert_eq!(cifar_pair(45), None);
    }

    #[test]
    fn projection_columns_are_unit_norm_and_seeded() {
        let p = projection(50, 4, 3);
        for j in 0..4 {
            let n: f64 = (0..50).map(|i| (p[i * 4 + j] as f64).powi(2)).sum();
            assert!((n - 1.0).abs() < 1e-5, "column {j} norm² {n}");
        }
        assert_eq!(p, projection(50, 4, 3));
        assert_ne!(p, projection(50, 4, 4));
    }

    #[test]
    fn standardise_gives_zero_mean_unit_std() {
        let mut x: Vec<f32> = (0..40).map(|i| (i * i % 17) as f32).collect();
        standardise(&mut x, 2);
        for j in 0..2 {
            let col: Vec<f64> = (0..20).map(|r| x[r * 2 + j] as f64).collect();
            let m = col.iter().sum::<f64>() / 20.0;
            let s = (col.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 20.0).sqrt();
            assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4, "{m} {s}");
        }
    }

    #[test]
    fn fixed_and_generic_projection_agree_bitwise() {
        let mut rng = Rng::new(5);
        let n = 7;
        let images = Images {
            pixel_count: 300,
            pixels: (0..n * 300)
                .map(|i| if i % 3 == 0 { 0 } else { rng.below(256) as u8 })
                .collect(),
            labels: vec![0; n],
            source: crate::tasks::datasets::DatasetSource {
                kind: DatasetKind::Mnist,
                files: vec![],
                checksum: String::new(),
            },
        };
        let chosen: Vec<usize> = (0..n).rev().collect();
        for dim in [4, 8, 16, 32] {
            let proj = projection(300, dim, 9);
            let mut a = vec![0.0f32; n * dim];
            let mut b = vec![0.0f32; n * dim];
            match dim {
                4 => project_fixed::<4>(&images, &chosen, &proj, &mut a),
                8 => project_fixed::<8>(&images, &chosen, &proj, &mut a),
                16 => project_fixed::<16>(&images, &chosen, &proj, &mut a),
                _ => project_fixed::<32>(&images, &chosen, &proj, &mut a),
            }
            project_any(&images, &chosen, &proj, &mut b, dim);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "dim {dim}");
            assert!(a.iter().any(|&x| x != 0.0));
        }
    }

    #[test]
    fn sizes_validate() {
        assert!(ImageSizes::default().validate("x").is_ok());
        assert_eq!(ImageSizes::default().train_count(2000), 1000);
        let ninths = ImageSizes {
            n_samples: 9000,
            train_split: 8.0 / 9.0,
        };
        assert_eq!(ninths.train_count(9000), 8000);
        assert_eq!(
            ImageSizes {
                n_samples: 10,
                train_split: 0.75
            }
            .train_count(10),
            7
        );
        for bad in [
            ImageSizes {
                n_samples: 1,
                train_split: 0.5,
            },
            ImageSizes {
                n_samples: 10,
                train_split: 1.0,
            },
            ImageSizes {
                n_samples: 10,
                train_split: f64::NAN,
            },
        ] {
            assert!(bad.validate("x").is_err());
        }
    }
}
