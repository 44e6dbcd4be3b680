"""G.722 (ITU-T G.722, 64 kbit/s mode): sub-band ADPCM of 16 kHz audio, one byte per sample pair.

A quadrature mirror filter splits the signal into a 0-4 kHz band (6-bit ADPCM) and a 4-8 kHz
band (2-bit ADPCM); the decoder mirrors it. The arithmetic follows the Recommendation's
fixed-point description, so a byte stream from here decodes the same in any other G.722
implementation (tests/audio/test_channel_codecs.py cross-checks one when installed).

ADPCM is sequential by nature, so this is plain Python: about 0.1 s of CPU per second of audio,
fine for a benchmark's simulated channel, not for a media path.
"""

from __future__ import annotations

import numpy as np

# Quantizer and scale-factor tables of the Recommendation (Tables 6-9 and the QMF of Table 11).
_Q6 = (0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
       1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0)
_ILN = (0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
        11, 10, 9, 8, 7, 6, 5, 4, 0)
_ILP = (0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40,
        39, 38, 37, 36, 35, 34, 33, 32, 0)
_WL = (-60, -30, 58, 172, 334, 538, 1198, 3042)
_RL42 = (0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0)
_ILB = (2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774,
        2834, 2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838,
        3922, 4008)
_QM4 = (0, -20456, -12896, -8968, -6288, -4240, -2584, -1200,
        20456, 12896, 8968, 6288, 4240, 2584, 1200, 0)
_QM6 = (-136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192,
        -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
        -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704,
        14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464,
        4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136)
_QM2 = (-7408, -1616, 7408, 1616)
_IHN = (0, 1, 0)
_IHP = (0, 3, 2)
_WH = (0, -214, 798)
_RH2 = (2, 1, 2, 1)
_QMF = (3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11)
_QMF_REV = _QMF[::-1]


def _sat(x: int) -> int:
    return 32767 if x > 32767 else (-32768 if x < -32768 else x)


class _Band:
    """One sub-band's adaptive predictor (two poles, six zeros) and quantizer scale."""

    __slots__ = ("s", "sz", "r", "a", "p", "d", "b", "nb", "det")

    def __init__(self, det: int) -> None:
        self.s = self.sz = self.nb = 0
        self.det = det
        self.r = [0, 0, 0]
        self.a = [0, 0, 0]
        self.p = [0, 0, 0]
        self.d = [0] * 7
        self.b = [0] * 7

    def scale(self, log_increment: int, nb_max: int, shift: int) -> None:
        """LOGSCL/LOGSCH then SCALEL/SCALEH: the log step size leaks, moves, and is re-linearized."""
        nb = ((self.nb * 127) >> 7) + log_increment
        self.nb = 0 if nb < 0 else (nb_max if nb > nb_max else nb)
        mant = _ILB[(self.nb >> 6) & 31]
        exp = shift - (self.nb >> 11)
        self.det = (mant << -exp if exp < 0 else mant >> exp) << 2

    def adapt(self, d: int) -> None:
        """Block 4: reconstruct, update pole and zero coefficients, predict the next sample."""
        a, p, dd, b = self.a, self.p, self.d, self.b
        r0 = _sat(self.s + d)
        p0 = _sat(self.sz + d)
        sg0, sg1, sg2 = p0 >> 15, p[1] >> 15, p[2] >> 15
        # Second pole (UPPOL2), then the first (UPPOL1), bounded for stability.
        wd1 = _sat(a[1] << 2)
        wd2 = -wd1 if sg0 == sg1 else wd1
        if wd2 > 32767:
            wd2 = 32767
        a2 = (wd2 >> 7) + (128 if sg0 == sg2 else -128) + ((a[2] * 32512) >> 15)
        a2 = 12288 if a2 > 12288 else (-12288 if a2 < -12288 else a2)
        a1 = _sat((192 if sg0 == sg1 else -192) + ((a[1] * 32640) >> 15))
        lim = _sat(15360 - a2)
        a1 = lim if a1 > lim else (-lim if a1 < -lim else a1)
        # Zeros (UPZERO): sign-sign adaptation against the last six quantized differences.
        step = 128 if d else 0
        sgd = d >> 15
        for i in range(1, 7):
            b[i] = _sat((step if (dd[i] >> 15) == sgd else -step) + ((b[i] * 32640) >> 15))
        dd[0] = d
        for i in range(6, 0, -1):
            dd[i] = dd[i - 1]
        sz = 0
        for i in range(1, 7):
            sz += (b[i] * _sat(dd[i] + dd[i])) >> 15
        self.sz = sz = _sat(sz)
        self.r = [r0, r0, self.r[1]]
        self.p = [p0, p0, p[1]]
        a[1], a[2] = a1, a2
        sp = _sat(((a1 * _sat(r0 + r0)) >> 15) + ((a2 * _sat(self.r[2] + self.r[2])) >> 15))
        self.s = _sat(sp + sz)


class G722Encoder:
    """Streaming encoder: int16 samples at 16 kHz (even count per call) -> one byte per two."""

    def __init__(self) -> None:
        self._x = [0] * 24
        self._low = _Band(32)
        self._high = _Band(8)

    def encode(self, samples: np.ndarray) -> bytes:
        pcm = np.asarray(samples, dtype=np.int16).tolist()
        if len(pcm) % 2:
            raise ValueError("G.722 encodes sample pairs: give an even number of samples")
        x, low, high = self._x, self._low, self._high
        out = bytearray(len(pcm) // 2)
        for j in range(0, len(pcm), 2):
            del x[:2]
            x.append(pcm[j])
            x.append(pcm[j + 1])
            odd = sum(c * v for c, v in zip(_QMF, x[0::2]))
            even = sum(c * v for c, v in zip(_QMF_REV, x[1::2]))
            xlow, xhigh = (even + odd) >> 14, (even - odd) >> 14
            # Lower band: 6-bit adaptive quantizer.
            el = _sat(xlow - low.s)
            mag = el if el >= 0 else -(el + 1)
            i = 1
            while i < 30 and mag >= (_Q6[i] * low.det) >> 12:
                i += 1
            ilow = _ILN[i] if el < 0 else _ILP[i]
            ril = ilow >> 2
            dlow = (low.det * _QM4[ril]) >> 15
            low.scale(_WL[_RL42[ril]], 18432, 8)
            low.adapt(dlow)
            # Higher band: 2-bit adaptive quantizer.
            eh = _sat(xhigh - high.s)
            mag = eh if eh >= 0 else -(eh + 1)
            mih = 2 if mag >= (564 * high.det) >> 12 else 1
            ihigh = _IHN[mih] if eh < 0 else _IHP[mih]
            dhigh = (high.det * _QM2[ihigh]) >> 15
            high.scale(_WH[_RH2[ihigh]], 22528, 10)
            high.adapt(dhigh)
            out[j >> 1] = (ihigh << 6) | ilow
        return bytes(out)


class G722Decoder:
    """Streaming decoder: bytes -> int16 samples at 16 kHz, two per byte."""

    def __init__(self) -> None:
        self._x = [0] * 24
        self._low = _Band(32)
        self._high = _Band(8)

    def decode(self, data: bytes) -> np.ndarray:
        x, low, high = self._x, self._low, self._high
        out = [0] * (2 * len(data))
        for j, code in enumerate(data):
            ilow, ihigh = code & 0x3F, (code >> 6) & 0x03
            rlow = low.s + ((low.det * _QM6[ilow]) >> 15)
            rlow = 16383 if rlow > 16383 else (-16384 if rlow < -16384 else rlow)
            ril = ilow >> 2
            dlow = (low.det * _QM4[ril]) >> 15
            low.scale(_WL[_RL42[ril]], 18432, 8)
            low.adapt(dlow)
            dhigh = (high.det * _QM2[ihigh]) >> 15
            rhigh = dhigh + high.s
            rhigh = 16383 if rhigh > 16383 else (-16384 if rhigh < -16384 else rhigh)
            high.scale(_WH[_RH2[ihigh]], 22528, 10)
            high.adapt(dhigh)
            # Receive QMF: rebuild two full-band samples from the two bands.
            del x[:2]
            x.append(rlow + rhigh)
            x.append(rlow - rhigh)
            out2 = sum(c * v for c, v in zip(_QMF, x[0::2]))
            out1 = sum(c * v for c, v in zip(_QMF_REV, x[1::2]))
            out[2 * j] = _sat(out1 >> 11)
            out[2 * j + 1] = _sat(out2 >> 11)
        return np.array(out, dtype=np.int16)
