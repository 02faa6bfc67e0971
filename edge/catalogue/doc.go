// Package catalogue holds the node's built-in, offline catalogues of what a
// primary health centre orders and gives: the lab tests its own laboratory
// runs (each with its LOINC code, its UCUM unit or its list of answers, and
// its names in English and Hindi) and the vaccines of India's Universal
// Immunization Programme (each with its SNOMED CT code from the ABDM IG).
//
// edge validates lab orders, results and vaccines against these lists;
// webui offers them on the visit form; syncq/fhir takes from them the codes
// and displays it sends upstream. So there is one list, and a code a record
// holds is always one the catalogue knows.
//
// # What this package must never do
//
//   - Never hold a code that was not checked. Each row says in a comment
//     where its code and display were checked: the ABDM IG package ndhm.in
//     6.5.0 (/work/shared/fhir), the project's reference notes, the
//     devices/vitals catalogue, or, where neither has the code, named
//     public uses of it. Every LOINC code has a valid mod-10 check digit
//     (a test checks it).
//   - Never change a Code (the key a record stores) once shipped: records
//     in the field hold it. A renamed test keeps its Code.
//   - Never import anything of the node: edge imports it.
//
// All tables are read-only after initialisation; every function is safe
// for concurrent use.
package catalogue
