# Generates the sample transmissions in this directory (see README.md).
# Written from the E1381 (LIS01-A2) and E1394 (LIS02-A2) definitions; every
# name, ID and value is invented. Run: python3 gen.py
import os, random
OUT = os.path.dirname(os.path.abspath(__file__))
STX, ETX, EOT, ENQ, ETB = b'\x02', b'\x03', b'\x04', b'\x05', b'\x17'

def csum(b):
    return sum(b) & 0xff

def frame(fn, text, last=True, fn_present=True, cs='upper', term=b'\r\n', end=True):
    if isinstance(text, str):
        text = text.encode('latin-1')
    body = (str(fn % 8).encode() if fn_present else b'') + text
    if end:
        body += ETX if last else ETB
    out = STX + body
    if end:
        v = csum(body)
        if cs == 'upper':
            out += b'%02X' % v
        elif cs == 'lower':
            out += b'%02x' % v
        elif cs == 'bad':
            out += b'%02X' % ((v + 1) & 0xff)
        out += term
    return out

def rec(*fields, n=None):
    f = list(fields)
    if n:
        f += [''] * (n - len(f))
    return '|'.join(f)

def order(seq, spec, inst, tests, prio, req, coll, action='N', stype='SERUM', report='F'):
    f = ['O', str(seq), spec, inst, tests, prio, req, coll, '', '', '', action, '', '', '', stype] + [''] * 9 + [report]
    assert len(f) == 26
    return '|'.join(f)

def result(seq, test, value, units, rng, flags, status, done, instr, op='', started=''):
    return '|'.join(['R', str(seq), test, value, units, rng, flags, '', status, '', op, started, done, instr])

def one_per_frame(records, **kw):
    out = ENQ
    for i, r in enumerate(records):
        out += frame(i + 1, r + '\r', **kw)
    return out + EOT

def etb_split(records, size=240, fn0=1):
    text = ''.join(r + '\r' for r in records).encode('latin-1')
    out = b''
    fn = fn0
    chunks = [text[i:i + size] for i in range(0, len(text), size)]
    for i, c in enumerate(chunks):
        out += frame(fn, c, last=(i == len(chunks) - 1))
        fn += 1
    return out

def write(name, data):
    with open(os.path.join(OUT, name + '.astm'), 'wb') as fh:
        fh.write(data)

# --- clean chemistry ---------------------------------------------------------
chem = [
    'H|\\^&|||ChemLab 300^2.1^CL3-0042|||||HEALTHPOST||P|LIS2-A2|20250314093015',
    'P|1||PID-000123|LAB-77|TESTPATIENT^ASHA^K||19800512|F',
    order(1, 'S250314-017', '0017^R1^5', '^^^GLU\\^^^CREA\\^^^UREA\\^^^HB\\^^^ALT', 'R', '20250314080000', '20250314081500'),
    result(1, '^^^GLU', '98', 'mg/dL', '70 to 110', 'N', 'F', '20250314091230', 'ChemLab 300', op='OPR1', started='20250314091000'),
    result(2, '^^^CREA', '1.42', 'mg/dL', '0.6 to 1.2', 'H', 'F', '20250314091240', 'ChemLab 300'),
    'C|1|I|Above range&S& check hydration^RECHECK|G',
    result(3, '^^^UREA', '32', 'mg/dL', '15 to 40', 'N', 'F', '20250314091250', 'ChemLab 300'),
    result(4, '^^^HB', '11.2', 'g/dL', '12.0 to 15.5', 'L', 'F', '20250314091300', 'ChemLab 300'),
    result(5, '^^^ALT', '45', 'U/L', '7 to 56', 'N', 'F', '20250314091310', 'ChemLab 300'),
    'L|1|N',
]
write('chemistry-clean', one_per_frame(chem))

# --- haematology, many R records over ETB frames ------------------------------
cbc = [('WBC', '11.8', '10*3/uL', '4.0-10.0', 'H'), ('RBC', '4.21', '10*6/uL', '3.80-5.20', 'N'),
       ('HGB', '10.9', 'g/dL', '12.0-15.5', 'L'), ('HCT', '33.6', '%', '36.0-46.0', 'L'),
       ('MCV', '79.8', 'fL', '80.0-100.0', 'L'), ('MCH', '25.9', 'pg', '27.0-33.0', 'L'),
       ('MCHC', '32.4', 'g/dL', '32.0-36.0', 'N'), ('RDW-CV', '15.9', '%', '11.5-14.5', 'H'),
       ('PLT', '312', '10*3/uL', '150-400', 'N'), ('MPV', '9.1', 'fL', '7.4-10.4', 'N'),
       ('NEU%', '72.3', '%', '40.0-75.0', 'N'), ('LYM%', '18.2', '%', '20.0-45.0', 'L'),
       ('MON%', '6.1', '%', '2.0-10.0', 'N'), ('EOS%', '2.9', '%', '1.0-6.0', 'N'),
       ('BAS%', '0.5', '%', '0.0-1.0', 'N'), ('NEU#', '8.53', '10*3/uL', '2.00-7.00', 'H'),
       ('LYM#', '2.15', '10*3/uL', '0.80-4.00', 'N'), ('MON#', '0.72', '10*3/uL', '0.12-1.20', 'N'),
       ('EOS#', '0.34', '10*3/uL', '0.02-0.50', 'N'), ('BAS#', '0.06', '10*3/uL', '0.00-0.10', 'N'),
       ('PCT', '0.284', '%', '0.108-0.282', 'H'), ('PDW', '16.2', 'fL', '9.0-17.0', 'N')]
hem = ['H|\\^&|||HemaCount 5D^4.0.7^HC5-1187|||||HEALTHPOST||P|LIS2-A2|20250314101502',
       'P|1||PID-000456||TESTPATIENT^RAVI||20190203|M',
       order(1, 'H250314-004', '', '^^^CBC^Complete blood count', 'R', '', '20250314094500', stype='WHOLEBLOOD')]
for i, (code, val, unit, rng, flag) in enumerate(cbc):
    flags = flag if flag != 'H' else 'H\\A'
    hem.append(result(i + 1, '^^^%s^%d' % (code, i + 1), val, unit, rng, flags, 'F', '20250314101455', 'HemaCount 5D'))
    if code == 'WBC':
        hem.append('M|1|HIST^WBC|64|' + '^'.join(str((j * 7) % 23) for j in range(64)))
hem.append('C|1|I|Microcytic hypochromic picture^SMEAR ADVISED|I')
hem.append('L|1|N')
write('haematology-etb', ENQ + etb_split(hem) + EOT)

# --- several patients ---------------------------------------------------------
mp = ['H|\\^&|||ChemLab 300^2.1^CL3-0042|||||HEALTHPOST||P|LIS2-A2|20250315110000']
pats = [('PID-001', 'S250315-001', [('GLU', '142', 'H'), ('CREA', '0.9', 'N')]),
        ('PID-002', 'S250315-002', [('GLU', '88', 'N'), ('UREA', '51', 'H')]),
        ('PID-003', 'S250315-003', [('HB', '8.4', 'LL'), ('GLU', '', '')])]
units = {'GLU': 'mg/dL', 'CREA': 'mg/dL', 'UREA': 'mg/dL', 'HB': 'g/dL'}
for i, (pid, spec, res) in enumerate(pats):
    mp.append('P|%d||%s||TESTPATIENT^%d||19900101|U' % (i + 1, pid, i + 1))
    if i == 1:
        mp.append('C|1|L|Fasting sample|G')
    mp.append(order(1, spec, '', '\\'.join('^^^' + c for c, _, _ in res), 'S' if i == 2 else 'R', '', '20250315100000'))
    for j, (code, val, flag) in enumerate(res):
        status = 'F' if val else 'X'
        mp.append(result(j + 1, '^^^' + code, val, units[code] if val else '', '', flag, status, '20250315105500' if val else '', 'ChemLab 300'))
mp.append('L|1|N')
write('multi-patient', one_per_frame(mp))

# --- two messages in one transmission -------------------------------------------
m1 = ['H|\\^&|||ChemLab 300^2.1|||||||P|LIS2-A2|20250316080000', 'P|1||PID-010', order(1, 'S1', '', '^^^GLU', 'R', '', ''),
      result(1, '^^^GLU', '101', 'mg/dL', '', 'N', 'F', '20250316075900', ''), 'L|1|N']
m2 = ['H|\\^&|||ChemLab 300^2.1|||||||P|LIS2-A2|20250316080100', 'P|1||PID-011', order(1, 'S2', '', '^^^GLU', 'R', '', ''),
      result(1, '^^^GLU', '77', 'mg/dL', '', 'N', 'F', '20250316080000', ''), 'L|1|N']
write('two-messages', one_per_frame(m1 + m2))
# the first message never gets its L record; the second H starts over
write('missing-terminator', one_per_frame(m1[:-1] + m2))

# --- deviating: Mindray-like oversized single frame ------------------------------
big = ['H|\\^&|||BioChem 240^^|||||||PR|1394-97|20250317143000', 'P|475||||||||||||||||||||||||||||||||',
       order(1, '1042', '', '', '', '', '', action='', stype='serum', report='')]
tests = [('ALB', 'Albumin', '4.12'), ('ALP', 'Alkaline phosphatase', '187.5'), ('ALT', 'Alanine aminotransferase', '23.1'),
         ('AST', 'Aspartate aminotransferase', '30.2'), ('TBIL', 'Total bilirubin', '0.84'), ('DBIL', 'Direct bilirubin', '0.21'),
         ('TP', 'Total protein', '7.02'), ('GLU', 'Glucose', '2.837141'), ('CHOL', 'Cholesterol', '201.4'), ('TG', 'Triglycerides', '156.0')]
for i, (code, name, val) in enumerate(tests):
    big.append('R|%d|%s^%s^^F|%s^^^^|mg/dL|0.000000-0.000000|N||||||20250317142912|' % (i + 1, code, name, val))
big.append('L|474|N')
write('oversized-frame', ENQ + frame(1, ''.join(r + '\r' for r in big)) + EOT)

# small message reused by several deviating cases
small = ['H|\\^&|||GlucoStat^1.0|||||||P|LIS2-A2|20250318090000', 'P|1||PID-020||TESTPATIENT^MEENA',
         order(1, 'G-88', '', '^^^GLU', 'R', '', ''), result(1, '^^^GLU', '126', 'mg/dL', '70-110', 'H', 'F', '20250318085800', 'GlucoStat'), 'L|1|N']
write('no-checksum', one_per_frame(small, cs='none'))
def with_letter(fn, r):
    # pad with empty trailing fields until the checksum has a hex letter,
    # so that every frame of this case shows the lowercase deviation
    while not any(c in 'abcdef' for c in '%02x' % csum((str(fn % 8) + r + '\r').encode() + ETX)):
        r += '|'
    return r
write('lowercase-checksum', ENQ + b''.join(frame(i + 1, with_letter(i + 1, r) + '\r', cs='lower') for i, r in enumerate(small)) + EOT)
write('lf-only', one_per_frame(small, term=b'\n'))
write('cr-only', one_per_frame(small, term=b'\r'))
write('no-frame-number', one_per_frame(small, fn_present=False))
write('frames-from-zero', ENQ + b''.join(frame(i, r + '\r') for i, r in enumerate(small)) + EOT)
write('missing-etx', ENQ + b''.join(frame(i + 1, r + '\r', end=False) for i, r in enumerate(small)) + EOT)
# Maglumi-like: no frame number, no checksum, nothing after ETX, one frame
write('bare-frame', ENQ + STX + ''.join(r + '\r' for r in small).encode() + ETX + EOT)
# LF-separated records inside one frame
write('lf-records', ENQ + frame(1, ''.join(r + '\n' for r in small)) + EOT)
# Yumizen-like doubled repeat delimiter in H
dd = ['H|\\\\^&|||HemaMini^1.2|||||||P|LIS2-A2|20250318100000'] + small[1:]
write('doubled-delimiter', one_per_frame(dd))

# --- hostile -------------------------------------------------------------------------
fr = [frame(i + 1, r + '\r') for i, r in enumerate(small)]
write('bad-checksum', ENQ + fr[0] + frame(2, small[1] + '\r', cs='bad') + b''.join(fr[1:]) + EOT)
write('bad-checksum-abort', ENQ + fr[0] + frame(2, small[1] + '\r', cs='bad') * 6 + EOT)
write('wrong-frame-number', ENQ + fr[0] + fr[1] + frame(4, small[2] + '\r') * 6 + EOT)
write('duplicate-frame', ENQ + fr[0] + fr[1] + fr[2] + fr[2] + b''.join(fr[3:]) + EOT)
write('eot-mid-message', ENQ + fr[0] + fr[1] + fr[2] + EOT)
allf = b''.join(fr)
write('truncated', ENQ + fr[0] + fr[1] + fr[2][:len(fr[2]) // 2])
rnd = random.Random(1394)
g = bytearray(rnd.getrandbits(8) for _ in range(2048))
for pos, b in [(10, 0x05), (200, 0x02), (420, 0x03), (421, 0x30), (900, 0x02), (901, 0x31), (1500, 0x17), (2047, 0x04)]:
    g[pos] = b
write('garbage', bytes(g))
