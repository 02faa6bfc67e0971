package webui

// Each code has its name in the catalogues as dx.<code>; the English name
// is the display stored with the record and sent upstream.

// icd10Codes are the conditions common in primary care that the visit form
// offers, grouped as a clinician looks for them: infections, respiratory,
// eye and ear, digestive, metabolic, blood, heart, nerves and mind, bones and
// joints, skin, urinary and women's health, pregnancy and children, check-ups,
// symptoms, injuries and poisoning. ICD-10 (WHO 2019) codes.
var icd10Codes = []string{
	"A09", "A01.0", "A03.9", "A06.0", "A15.0", "A27.9", "A30.9", "A37.9", "A36.9", "A35", "A90", "A91", "A92.0",
	"B50.9", "B51.9", "B54", "B01.9", "B05.9", "B26.9", "B15.9", "B16.9", "B17.2", "B19.9", "B20", "B34.9",
	"B35.4", "B35.6", "B37.0", "B37.3", "B77.9", "B82.9", "B86", "U07.1", "R50.9", "J00", "J01.9", "J02.9",
	"J03.9", "J06.9", "J11.1", "J18.9", "J20.9", "J21.9", "J30.4", "J44.9", "J45.9", "R05", "R06.0", "H10.9",
	"H25.9", "H52.7", "H60.9", "H61.2", "H66.9", "K02.9", "K12.0", "K21.9", "K29.7", "K30", "K37", "K40.9",
	"K59.0", "K64.9", "K80.2", "R10.4", "R11", "R17", "E86", "E10.9", "E11.9", "E03.9", "E05.9", "E04.9", "E43",
	"E44.0", "E50.9", "E55.9", "E66.9", "E78.5", "D50.9", "D64.9", "D56.9", "D57.1", "I10", "I95.9", "I09.9",
	"I20.9", "I21.9", "I50.9", "I64", "I83.9", "R07.4", "G40.9", "G43.9", "G51.0", "R51", "R42", "R55", "F10.2",
	"F17.2", "F20.9", "F32.9", "F41.9", "M06.9", "M10.9", "M17.9", "M19.9", "M25.5", "M54.2", "M54.5", "M79.1",
	"L01.0", "L02.9", "L03.9", "L20.9", "L23.9", "L30.9", "L50.9", "L70.0", "R21", "N39.0", "N20.0", "N18.9",
	"N40", "N73.9", "N76.0", "N91.2", "N92.0", "N94.6", "N95.1", "O03.9", "O13", "O14.9", "O21.0", "O24.4",
	"O99.0", "Z34.9", "Z39.2", "Z30.0", "P59.9", "P07.1", "Z00.0", "Z00.1", "Z09", "Z23", "R53", "R63.4",
	"T14.0", "T14.1", "T14.2", "T14.3", "T30.0", "T60.0", "T63.0", "T63.2", "T67.0", "T78.4", "W54",
}
