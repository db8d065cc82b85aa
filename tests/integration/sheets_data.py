"""Workbooks for test_sheets.py, made here with Debian's python3-openpyxl,
python3-xlsxwriter and python3-xlwt, hostile ones by rewriting their
parts; and the checks that compare a sheet's CSV with what openpyxl or
xlrd read from the workbook, cell by cell."""

import csv
import datetime
import io
import os
import zipfile

import openpyxl
import xlrd
import xlsxwriter
import xlwt

TEXTS = ["plain", "héllo wörld", "日本語のテキスト", "emoji 😀 ok", "comma, inside",
         'say "hi"', "two\nlines", "crlf\r\nline", "  padded  ", "=not a formula",
         "'quoted'", "tab\there", "trailing,"]


def _save_openpyxl(wb):
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def types_book():
    """openpyxl: every value type, dates in the 1900 system, empty rows and
    columns, unicode, quotes and newlines, a hidden sheet, many sheets."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Types"
    ws.append(["text", "int", "float", "date", "datetime", "time", "bool"])
    base = datetime.datetime(2024, 2, 27, 13, 14, 15)
    for i, t in enumerate(TEXTS):
        ws.append([t, i * 1000 - 3, i / 7, (base + datetime.timedelta(days=i)).date(),
                   base + datetime.timedelta(days=i * 3, seconds=i * 61, milliseconds=i * 125),
                   datetime.time(i % 24, (i * 7) % 60, (i * 13) % 60), i % 2 == 0])
    ws.append([])  # an empty row in the middle
    ws.append([None, 0.1 + 0.2, -0.0, 1e21, 1e-7, 2 ** 53 + 1.0, 123456.789e10])
    ws.cell(row=40, column=12, value="far corner")  # trailing empty rows and columns
    for d in (datetime.date(1900, 1, 1), datetime.date(1900, 2, 28), datetime.date(1900, 3, 1),
              datetime.date(1999, 12, 31), datetime.date(9999, 12, 31)):
        ws.append([d])
    hidden = wb.create_sheet("Hidden one")
    hidden.sheet_state = "hidden"
    hidden["B2"] = "only B2"
    for i in range(30):
        s = wb.create_sheet(f"Sheet n°{i}")
        s.append([f"sheet {i}", i])
    wb.create_sheet("Empty")
    return _save_openpyxl(wb)


def mac_book():
    """openpyxl with the 1904 date system."""
    wb = openpyxl.Workbook()
    wb.epoch = openpyxl.utils.datetime.MAC_EPOCH
    ws = wb.active
    ws.title = "Mac"
    ws.append(["date", "datetime"])
    # From day 1: openpyxl reads serial 0 as a time of day.
    for i in range(1, 21):
        d = datetime.datetime(1904, 1, 1) + datetime.timedelta(days=i * 997, hours=i)
        ws.append([d.date(), d])
    return _save_openpyxl(wb)


def formulas_book(path):
    """XlsxWriter: formulas with cached values, number formats, escapes,
    a hidden sheet."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Formulas")
    ws.write_row(0, 0, ["n", "s", "b", "e", "dur", "hhmm", "day"])
    ws.write_formula(1, 0, "=6*7", None, 42)
    ws.write_formula(1, 1, '="a"&"b"', None, "ab")
    ws.write_formula(1, 2, "=1=1", None, True)
    ws.write_formula(1, 3, "=1/0", None, "#DIV/0!")
    ws.write_number(1, 4, 1.5, wb.add_format({"num_format": "[h]:mm:ss"}))
    ws.write_number(1, 5, 0.75, wb.add_format({"num_format": "hh:mm"}))
    ws.write_number(1, 6, 45351, wb.add_format({"num_format": "dd/mm/yyyy"}))
    ws.write_formula(2, 0, "=A2+1", None, 43)
    ws.write_string(3, 0, "under_x0041_score")
    ws.write_number(4, 3, 3.25, wb.add_format({"num_format": '0.00" kg"'}))
    secret = wb.add_worksheet("Hidden")
    secret.write("A1", "vh")
    secret.hide()
    wb.close()


def legacy_book():
    """xlwt: a legacy .xls, two sheets."""
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Legacy")
    date = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    stamp = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    clock = xlwt.easyxf(num_format_str="hh:mm:ss")
    ws.write(0, 0, "text")
    ws.write(0, 1, "number")
    ws.write(0, 2, "date")
    ws.write(0, 3, "stamp")
    ws.write(0, 4, "time")
    for i, t in enumerate(TEXTS[:10]):
        r = i + 1
        ws.write(r, 0, t)
        ws.write(r, 1, i * 2.5 - 1)
        ws.write(r, 2, datetime.date(2001, 1, 1) + datetime.timedelta(days=i * 40), date)
        ws.write(r, 3, datetime.datetime(2010, 5, 6, 7, 8, 9) + datetime.timedelta(hours=i * 5), stamp)
        ws.write(r, 4, datetime.time(i, 2 * i, 3 * i), clock)
    ws.write(14, 7, "far")
    second = wb.add_sheet("Zweite Tabelle")
    second.write(0, 0, 1.5)
    second.write(2, 1, "x")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---- hostile workbooks: a good one with one part rewritten -------------------

def _small():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "S"
    ws.append(["a", "b", 1])
    ws.append(["c", "d", 2])
    return _save_openpyxl(wb)


def rewrite(book, parts):
    """The workbook with parts replaced (bytes) or added."""
    src = zipfile.ZipFile(io.BytesIO(book))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        names = src.namelist()
        for n in names:
            z.writestr(n, parts.get(n, src.read(n)))
        for n, data in parts.items():
            if n not in names:
                z.writestr(n, data)
    return out.getvalue()


NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def sheet_xml(body, dim=""):
    return f'<?xml version="1.0"?><worksheet {NS}>{dim}<sheetData>{body}</sheetData></worksheet>'


def hostile_books():
    """name -> (bytes, what the log line must say)."""
    good = _small()
    books = {}
    books["corrupt.xlsx"] = (good[:len(good) // 2], "zip")
    # 64 MiB of blanks deflate over 100:1.
    blanks = b" " * (64 << 20)
    books["bomb.xlsx"] = (rewrite(good, {"xl/worksheets/sheet1.xml": sheet_xml("").encode()
                                         .replace(b"<sheetData>", b"<sheetData>" + blanks)}),
                          "zip bomb")
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                        for i in range(1, 10))
              + f']><worksheet {NS}><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;'
              '</t></is></c></row></sheetData></worksheet>')
    books["laughs.xlsx"] = (rewrite(good, {"xl/worksheets/sheet1.xml": laughs}), "DOCTYPE")
    books["rows.xlsx"] = (rewrite(good, {"xl/worksheets/sheet1.xml": sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2147483648"><c r="A2147483648"><v>2</v>'
        '</c></row>')}), "2147483648")
    books["claims.xlsx"] = (rewrite(good, {"xl/worksheets/sheet1.xml": sheet_xml(
        '<row r="1"><c r="A1"><v>1</v></c></row>', '<dimension ref="A1:C2147483648"/>')}),
        "2147483648")
    books["sst.xlsx"] = (rewrite(good, {"xl/worksheets/sheet1.xml": sheet_xml(
        '<row r="1"><c r="A1" t="s"><v>999</v></c></row>')}), "shared string 999")
    # An encrypted Office file is a compound file holding EncryptionInfo
    # and EncryptedPackage instead of a zip: a legacy .xls whose workbook
    # stream is renamed is that shape.
    xls = bytearray(legacy_book())
    at = xls.find("Workbook".encode("utf-16-le"))
    name = "EncryptedPackage".encode("utf-16-le") + b"\0\0"
    xls[at:at + 64] = name.ljust(64, b"\0")
    xls[at + 64:at + 66] = len(name).to_bytes(2, "little")
    books["secret.xlsx"] = (bytes(xls), "password-protected")
    # A legacy sheet whose DIMENSIONS record claims 65536 x 200 cells:
    # libfreexl would allocate (and touch) 206 MB for this 6 KB file.
    xls = bytearray(legacy_book())
    at = xls.find(b"\x00\x02\x0e\x00")  # DIMENSIONS, 14 bytes
    xls[at + 4:at + 16] = (0).to_bytes(4, "little") + (65536).to_bytes(4, "little") + \
        (0).to_bytes(2, "little") + (200).to_bytes(2, "little")
    books["huge.xls"] = (bytes(xls), "more than 128 MiB")
    return books


def named_book():
    """Sheet names that are no file names: '/', empty, a clash."""
    good = _small()
    src = zipfile.ZipFile(io.BytesIO(good))
    wbxml = src.read("xl/workbook.xml").decode()
    rels = src.read("xl/_rels/workbook.xml.rels").decode()
    r = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    sheets = (f'<sheets><sheet {r} name="a/b" sheetId="1" r:id="rId1"/>'
              f'<sheet {r} name="a_b" sheetId="2" r:id="rX2"/>'
              f'<sheet {r} name="" sheetId="3" r:id="rX3"/></sheets>')
    start, end = wbxml.index("<sheets>"), wbxml.index("</sheets>") + len("</sheets>")
    wbxml = wbxml[:start] + sheets + wbxml[end:]
    rel = ('<Relationship Id="{}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
           'relationships/worksheet" Target="worksheets/sheet1.xml"/>')
    rels = rels.replace("</Relationships>", rel.format("rX2") + rel.format("rX3") + "</Relationships>")
    return rewrite(good, {"xl/workbook.xml": wbxml, "xl/_rels/workbook.xml.rels": rels})


def million_rows(path, rows=1_000_000):
    """XlsxWriter, constant memory: rows of an int, a float and a string."""
    wb = xlsxwriter.Workbook(path, {"constant_memory": True})
    ws = wb.add_worksheet("Big")
    for r in range(rows):
        ws.write_number(r, 0, r)
        ws.write_number(r, 1, r / 4)
        ws.write_string(r, 2, f"row {r}")
    wb.close()


def million_rows_csv_line(r):
    q = r / 4
    return f"{r},{int(q) if q == int(q) else q!r},row {r}\n"


def build(root):
    """The dataset tree test_sheets.py mounts; returns the hostile names."""
    os.makedirs(os.path.join(root, "books"))
    os.makedirs(os.path.join(root, "hostile"))
    with open(os.path.join(root, "books", "Types.xlsx"), "wb") as f:
        f.write(types_book())
    with open(os.path.join(root, "books", "Mac 1904.XLSM"), "wb") as f:
        f.write(mac_book())
    formulas_book(os.path.join(root, "books", "Formulas.xlsx"))
    with open(os.path.join(root, "books", "Legacy.xls"), "wb") as f:
        f.write(legacy_book())
    with open(os.path.join(root, "books", "Names.xlsx"), "wb") as f:
        f.write(named_book())
    with open(os.path.join(root, "books", "notes.csv"), "w") as f:
        f.write("not,a,workbook\n")
    hostile = hostile_books()
    for name, (data, _) in hostile.items():
        with open(os.path.join(root, "hostile", name), "wb") as f:
            f.write(data)
    return {name: why for name, (_, why) in hostile.items()}


# ---- comparing -------------------------------------------------------------------

def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _ms(t):
    """A datetime or time rounded to milliseconds, as Excel keeps them."""
    return t.replace(microsecond=round(t.microsecond / 1000) * 1000) \
        if t.microsecond % 1000 else t


def check_value(field, value, where):
    """Raises AssertionError when the CSV field does not say value."""
    if value is None or value == "":
        assert field == "", f"{where}: {field!r} for an empty cell"
    elif isinstance(value, bool):
        assert field == ("TRUE" if value else "FALSE"), f"{where}: {field!r} for {value}"
    elif isinstance(value, (int, float)):
        assert float(field) == float(value), f"{where}: {field!r} for {value!r}"
        assert field == "0" or len(field.lstrip("-").replace(".", "").lstrip("0")) <= 21, field
    elif isinstance(value, datetime.datetime):
        got = datetime.datetime.fromisoformat(field)
        assert got == _ms(value), f"{where}: {field!r} for {value}"
        if value.hour or value.minute or value.second or value.microsecond:
            assert "T" in field, f"{where}: {field!r} lost the time"
    elif isinstance(value, datetime.date):
        assert field == value.isoformat(), f"{where}: {field!r} for {value}"
    elif isinstance(value, datetime.time):
        assert datetime.time.fromisoformat(field) == _ms(value), f"{where}: {field!r} for {value}"
    elif isinstance(value, datetime.timedelta):
        sign = -1 if field.startswith("-") else 1
        h, m, s = field.lstrip("-").split(":")
        got = datetime.timedelta(hours=int(h), minutes=int(m), seconds=float(s)) * sign
        assert got == value, f"{where}: {field!r} for {value}"
    else:
        assert field == str(value), f"{where}: {field!r} for {value!r}"


def check_sheet_layout(rows, where):
    """Every line with a value has the same number of fields; the last
    line has a value; the last column has a value somewhere."""
    valued = [r for r in rows if any(r)]
    if not rows:
        return 0
    assert any(rows[-1]), f"{where}: the CSV ends with empty lines"
    widths = {len(r) for r in valued}
    assert len(widths) == 1, f"{where}: rows of {sorted(widths)} fields"
    width = widths.pop()
    assert any(r[-1] for r in valued), f"{where}: the last column is empty"
    for r in rows:
        assert r == [] or len(r) == width, f"{where}: a row of {len(r)} fields"
    return width


def compare_openpyxl(path_csv, ws, where):
    """Cell by cell against openpyxl (data_only: formulas' cached values)."""
    rows = read_csv(path_csv)
    width = check_sheet_layout(rows, where)
    grid = {}
    for row in ws.iter_rows():
        for c in row:
            if c.value is not None and c.value != "":
                grid[(c.row, c.column)] = c.value
    last_row = max((r for r, _ in grid), default=0)
    last_col = max((c for _, c in grid), default=0)
    assert len(rows) == last_row, f"{where}: {len(rows)} lines for {last_row} rows"
    assert width == last_col, f"{where}: {width} fields for {last_col} columns"
    for r, line in enumerate(rows, 1):
        for c in range(1, width + 1):
            field = line[c - 1] if line else ""
            check_value(field, grid.get((r, c)), f"{where} {openpyxl.utils.get_column_letter(c)}{r}")
    return len(grid)


def compare_xlrd(path_csv, sheet, datemode, where):
    """Cell by cell against xlrd. libfreexl gives booleans as 1/0."""
    rows = read_csv(path_csv)
    width = check_sheet_layout(rows, where)
    cells = 0
    for r in range(sheet.nrows):
        for c in range(sheet.ncols):
            cell = sheet.cell(r, c)
            field = rows[r][c] if r < len(rows) and c < len(rows[r]) else ""
            w = f"{where} R{r + 1}C{c + 1}"
            if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                assert field == "", w
                continue
            cells += 1
            if cell.ctype == xlrd.XL_CELL_DATE:
                value = xlrd.xldate.xldate_as_datetime(cell.value, datemode)
                if cell.value < 1:
                    value = value.time()
                elif cell.value == int(cell.value):
                    value = value.date()
                check_value(field, value.replace(microsecond=0)
                            if isinstance(value, datetime.datetime) else value, w)
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                assert field == str(int(cell.value)), w
            else:
                check_value(field, cell.value, w)
    assert width <= sheet.ncols, where
    return cells
