;; The lab's forward pass's one matrix product, in WebAssembly SIMD
;; (src/lib/model/linear-kernel.ts has its meaning, the same sums in plain
;; JavaScript, and the assembled bytes; scripts/assemble-wasm.mjs assembles
;; this file into them, and test/linear-kernel.test.ts checks the two agree).
;;
;;   out[t, o] = Σ_i x[t, i] · w[o, i]
;;
;; for every row t of x and every row o of w. Each sum runs over i in four
;; float32 lanes (lane j takes i ≡ j mod 4, in order of i; each product and
;; each sum rounded to float32, no fused multiply-add), then adds the lanes as
;; (l0 + l1) + (l2 + l3). Two rows of x and two of w at a time, so that each
;; vector loaded serves two products; a sum does not depend on its neighbours,
;; so a token's numbers do not depend on the tokens beside it.
;;
;; The caller pads: rows and outputs even, inputs a multiple of 4 (zeros),
;; every pointer a byte offset into this module's memory.
(module
  (memory (export "memory") 1)

  (func $lanes (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  (func (export "linear")
    (param $x i32) (param $w i32) (param $out i32)
    (param $rows i32) (param $inputs i32) (param $outputs i32)
    (local $rowBytes i32) (local $outBytes i32)
    (local $t i32) (local $o i32) (local $i i32)
    (local $x0 i32) (local $x1 i32) (local $w0 i32) (local $w1 i32) (local $at i32)
    (local $a v128) (local $b v128) (local $p v128) (local $q v128)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128)
    (local.set $rowBytes (i32.shl (local.get $inputs) (i32.const 2)))
    (local.set $outBytes (i32.shl (local.get $outputs) (i32.const 2)))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $t) (local.get $rows)))
        (local.set $x0 (i32.add (local.get $x) (i32.mul (local.get $t) (local.get $rowBytes))))
        (local.set $x1 (i32.add (local.get $x0) (local.get $rowBytes)))
        (local.set $o (i32.const 0))
        (block $outputsDone
          (loop $output
            (br_if $outputsDone (i32.ge_u (local.get $o) (local.get $outputs)))
            (local.set $w0 (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $rowBytes))))
            (local.set $w1 (i32.add (local.get $w0) (local.get $rowBytes)))
            (local.set $s00 (v128.const i32x4 0 0 0 0))
            (local.set $s01 (v128.const i32x4 0 0 0 0))
            (local.set $s10 (v128.const i32x4 0 0 0 0))
            (local.set $s11 (v128.const i32x4 0 0 0 0))
            (local.set $i (i32.const 0))
            (block $sumsDone
              (loop $sum
                (br_if $sumsDone (i32.ge_u (local.get $i) (local.get $rowBytes)))
                (local.set $a (v128.load (i32.add (local.get $x0) (local.get $i))))
                (local.set $b (v128.load (i32.add (local.get $x1) (local.get $i))))
                (local.set $p (v128.load (i32.add (local.get $w0) (local.get $i))))
                (local.set $q (v128.load (i32.add (local.get $w1) (local.get $i))))
                (local.set $s00 (f32x4.add (local.get $s00) (f32x4.mul (local.get $a) (local.get $p))))
                (local.set $s01 (f32x4.add (local.get $s01) (f32x4.mul (local.get $a) (local.get $q))))
                (local.set $s10 (f32x4.add (local.get $s10) (f32x4.mul (local.get $b) (local.get $p))))
                (local.set $s11 (f32x4.add (local.get $s11) (f32x4.mul (local.get $b) (local.get $q))))
                (local.set $i (i32.add (local.get $i) (i32.const 16)))
                (br $sum)))
            ;; out[t, o], out[t, o + 1], out[t + 1, o], out[t + 1, o + 1]
            (local.set $at
              (i32.add (local.get $out)
                (i32.add (i32.mul (local.get $t) (local.get $outBytes)) (i32.shl (local.get $o) (i32.const 2)))))
            (f32.store (local.get $at) (call $lanes (local.get $s00)))
            (f32.store offset=4 (local.get $at) (call $lanes (local.get $s01)))
            (local.set $at (i32.add (local.get $at) (local.get $outBytes)))
            (f32.store (local.get $at) (call $lanes (local.get $s10)))
            (f32.store offset=4 (local.get $at) (call $lanes (local.get $s11)))
            (local.set $o (i32.add (local.get $o) (i32.const 2)))
            (br $output)))
        (local.set $t (i32.add (local.get $t) (i32.const 2)))
        (br $row)))))
