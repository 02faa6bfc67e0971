package fhir

import "github.com/healthpost/healthpost/edge"

// Where each constant comes from, in the IG package ndhm.in 6.5.0
// (/work/shared/fhir/ndhm.in-6.5.0):
//
//	SD   StructureDefinition-<Name>.json, differential (fixed* values)
//	VS   ValueSet-<name>.json, compose.include.concept
//	CS   CodeSystem-ndhm-identifier-type-code.json
//	EX   example/Bundle-*.json
//
// The tests do not import these: they read the same files and check the
// bundles against them, so a wrong constant here fails a test.

// IG canonical URLs of the profiles this package claims in meta.profile.
const (
	igBase = "https://nrces.in/ndhm/fhir/r4/StructureDefinition/"

	ProfileDocumentBundle     = igBase + "DocumentBundle"
	ProfileOPConsultRecord    = igBase + "OPConsultRecord"
	ProfilePrescriptionRecord = igBase + "PrescriptionRecord"
	ProfileWellnessRecord     = igBase + "WellnessRecord"
	ProfileImmunizationRecord = igBase + "ImmunizationRecord"
	ProfileDiagnosticReport   = igBase + "DiagnosticReportRecord"

	profilePatient                  = igBase + "Patient"
	profileOrganization             = igBase + "Organization"
	profilePractitioner             = igBase + "Practitioner"
	profileEncounter                = igBase + "Encounter"
	profileCondition                = igBase + "Condition"
	profileObservation              = igBase + "Observation"
	profileObservationVitalSigns    = igBase + "ObservationVitalSigns"
	profileObservationBody          = igBase + "ObservationBodyMeasurement"
	profileObservationGeneralAssess = igBase + "ObservationGeneralAssessment"
	profileMedicationRequest        = igBase + "MedicationRequest"
	profileDocumentReference        = igBase + "DocumentReference"
	profileServiceRequest           = igBase + "ServiceRequest"
	profileDiagnosticReportLab      = igBase + "DiagnosticReportLab"
	profileImmunization             = igBase + "Immunization"
)

// Code systems.
const (
	systemSNOMED         = "http://snomed.info/sct"
	systemLOINC          = "http://loinc.org"
	systemUCUM           = "http://unitsofmeasure.org"
	systemICD10          = "http://hl7.org/fhir/sid/icd-10"
	systemV20203         = "http://terminology.hl7.org/CodeSystem/v2-0203"
	systemIGIdentifier   = "https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code"
	systemObsCategory    = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemCondCategory   = "http://terminology.hl7.org/CodeSystem/condition-category"
	systemActCode        = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemConfidential   = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	systemCondVerStatus  = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	systemInterpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	urlDataAbsentReason  = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
)

// Identifier systems.
//
// The IG fixes no system URL for ABHA, HFR or HPR identifiers (SD Patient,
// Organization, Practitioner: only type and value are required, and system
// for Organization). Its examples use the *.ndhm.gov.in hosts; NHA's
// ABDM-wrapper fhir-mapper uses *.abdm.gov.in (reference/abdm.md §5.4, §9.3).
// We use the IG examples' URLs: the IG is the document both sides validate
// against, its publisher (NRCeS) is the one that fixes these profiles, and
// the wrapper's mapper is known to carry other wrong constants (abdm.md
// §5.2). Nothing in ABDM matches records on these strings (consent and
// linking use the ABHA address itself), and they are constants so a change,
// if the IG ever fixes one, is one line here plus the golden files.
const (
	// SystemABHA is the system of both ABHA identifiers, the 14-digit ABHA
	// number and the ABHA address: the health ID service issues both. The
	// identifier type tells them apart.
	SystemABHA = "https://healthid.ndhm.gov.in"
	// SystemHFR is the system of the facility's HFR ID.
	SystemHFR = "https://facility.ndhm.gov.in"
	// SystemHPR is the system of a practitioner's HPR ID.
	SystemHPR = "https://doctor.ndhm.gov.in"
	// SystemURI says the identifier's value is itself a globally unique URI
	// (urn:uuid:...), FHIR's way to write an identifier that needs no
	// registry (http://hl7.org/fhir/R4/datatypes.html#Identifier). It is the
	// system of Bundle.identifier, Composition.identifier and the node's own
	// ids (encounter, user, device).
	SystemURI = "urn:ietf:rfc:3986"
)

// Codings, each with the display exactly as the IG writes it.
var (
	// Identifier types (CS ndhm-identifier-type-code, bound extensible to
	// Patient/Practitioner/Organization.identifier.type; the value set also
	// includes all of v2-0203).
	typeABHANumber  = coding{systemIGIdentifier, "HIN", "Health ID issued by NDHM"}
	typeABHAAddress = coding{systemIGIdentifier, "ABHA", "Ayushman Bharat Health Account (ABHA) ID"}
	typeHPR         = coding{systemIGIdentifier, "HPIN", "Health Practitioner ID issued by NDHM"}
	// v2-0203: PRN for the HFR ID as in every IG example (the IG's own code
	// system has no HFR code); MR for the facility's patient number; RI for
	// a node id (a user without an HPR ID, a device).
	typeHFR        = coding{systemV20203, "PRN", "Provider number"}
	typeMRN        = coding{systemV20203, "MR", "Medical record number"}
	typeResourceID = coding{systemV20203, "RI", "Resource identifier"}

	// Composition.type, fixed by SD OPConsultRecord, PrescriptionRecord,
	// ImmunizationRecord. (WellnessRecord fixes only type.text.)
	typeOPConsult    = coding{systemSNOMED, "371530004", "Clinical consultation report"}
	typePrescription = coding{systemSNOMED, "440545006", "Prescription record"}
	typeImmunization = coding{systemSNOMED, "41000179103", "Immunization record"}
	// DiagnosticReportRecord binds Composition.type (preferred) to VS
	// ndhm-diagnostic-report-type; this code is in it and in the IG's lab
	// example (Bundle-DiagnosticReport-Lab-example-03).
	typeDiagnosticReport = coding{systemSNOMED, "721981007", "Diagnostic studies report"}

	// OPConsultRecord section codes (SD slices ChiefComplaints,
	// PhysicalExamination, OtherObservations, Medications,
	// DocumentReference). The IG's
	// example-05 codes Follow Up as 736271009; the SD fixes 390906007. We
	// send no follow-up section (the domain has no follow-up date).
	sectionChiefComplaints = coding{systemSNOMED, "422843007", "Chief complaint section"}
	sectionPhysicalExam    = coding{systemSNOMED, "425044008", "Physical exam section"}
	sectionOtherObs        = coding{systemSNOMED, "404684003", "Clinical finding"}
	sectionMedications     = coding{systemSNOMED, "721912009", "Medication summary document"}
	sectionOPDocument      = coding{systemSNOMED, "371530004", "Clinical consultation report"}
	// SD OPConsultRecord slices InvestigationAdvice (entries ServiceRequest)
	// and Referral (entries ServiceRequest).
	sectionInvestigation = coding{systemSNOMED, "721963009", "Order document"}
	sectionReferral      = coding{systemSNOMED, "306206005", "Referral to service"}

	// ServiceRequest.category of a lab order, as in the IG's OPConsult
	// example (Bundle-OPConsultNote-example-05, Investigation Advice).
	categoryLabProcedure = coding{systemSNOMED, "108252007", "Laboratory procedure"}

	categoryVitalSigns       = coding{systemObsCategory, "vital-signs", "Vital Signs"}
	categoryLaboratory       = coding{systemObsCategory, "laboratory", "Laboratory"}
	categoryEncounterDiagnos = coding{systemCondCategory, "encounter-diagnosis", "Encounter Diagnosis"}
	classAmbulatory          = coding{systemActCode, "AMB", "ambulatory"}
	securityVeryRestricted   = coding{systemConfidential, "V", "very restricted"}
	// verificationEnteredInError marks the Conditions of a withdrawn
	// document (FHIR R4 condition-ver-status).
	verificationEnteredInError = coding{systemCondVerStatus, "entered-in-error", "Entered in Error"}
)

// WellnessRecord fixes Composition.type.text and slices its sections by
// title (SD WellnessRecord).
const (
	wellnessTypeText          = "Wellness Record"
	wellnessVitalSigns        = "Vital Signs"
	wellnessBodyMeasurement   = "Body Measurement"
	wellnessGeneralAssessment = "General Assessment"
	wellnessOtherObservations = "Other Observations"
)

// LOINC codes this package treats specially.
const (
	loincBPPanel     = "85354-9"
	loincSystolic    = "8480-6"
	loincDiastolic   = "8462-4"
	loincSpO2        = "2708-6"
	loincSpO2Oximetr = "59408-5"
	loincHeartRate   = "8867-4"
	loincRespRate    = "9279-1"

	displayBPPanel = "Blood pressure panel with all children optional"
)

// wellnessGroup is where an observation goes in a WellnessRecord: the
// section (by title), the profile it claims and whether it carries the
// vital-signs category as the IG example does.
type wellnessGroup struct {
	section  string
	profile  string
	category bool
}

var (
	groupVitalSigns = wellnessGroup{wellnessVitalSigns, profileObservationVitalSigns, true}
	groupBody       = wellnessGroup{wellnessBodyMeasurement, profileObservationBody, true}
	groupGeneral    = wellnessGroup{wellnessGeneralAssessment, profileObservationGeneralAssess, false}
	groupOther      = wellnessGroup{wellnessOtherObservations, "", false}
)

// wellnessGroups files LOINC codes by the IG value set that binds them:
// VS ndhm-vital-signs, ndhm-body-measurement, ndhm-general-assessment. Two
// codes the node stores are not in those sets and are filed by meaning:
//
//   - 59408-5 (SpO2 by pulse oximetry, what an oximeter measures) is sent with
//     two codings, the IG's 2708-6 first and 59408-5 second, as US Core does:
//     the extensible binding is met and nothing is lost.
//   - 8310-5 (body temperature, what a thermometer measures) stays 8310-5
//     and goes to Vital Signs. The IG's only temperature code, 61008-9, is
//     body *surface* (skin) temperature; sending an oral or axillary reading
//     as skin temperature would change its meaning, and the binding is
//     extensible, which allows another code for a concept the set lacks.
//
// Systolic and diastolic (8480-6, 8462-4) are not filed alone: they become
// components of an 85354-9 panel (see bloodPressure). Everything else, lab
// results included, goes to Other Observations with the IG's base
// Observation profile.
var wellnessGroups = map[string]wellnessGroup{
	"61008-9":        groupVitalSigns,
	loincRespRate:    groupVitalSigns,
	loincHeartRate:   groupVitalSigns,
	loincSpO2:        groupVitalSigns,
	loincBPPanel:     groupVitalSigns,
	loincSpO2Oximetr: groupVitalSigns,
	"8310-5":         groupVitalSigns,

	"39156-5": groupBody,
	"29463-7": groupBody,
	"8302-2":  groupBody,
	"56074-8": groupBody,
	"8280-0":  groupBody,
	"56072-2": groupBody,

	"2339-0":  groupGeneral,
	"41604-0": groupGeneral,
	"14743-9": groupGeneral,
	"14760-3": groupGeneral,
}

// unitText is Quantity.unit, the human form of a UCUM code, where the IG's
// WellnessRecord example writes one other than the code itself.
func unitText(loinc, ucum string) string {
	switch {
	case ucum == "mm[Hg]":
		return "mmHg"
	case ucum == "/min" && loinc == loincHeartRate:
		return "beats/minute"
	case ucum == "/min" && loinc == loincRespRate:
		return "breaths/minute"
	}
	return ucum
}

// encounterTypeText labels the node's encounter types for Encounter.type.
// The IG binds Encounter.type to an example value set of screening codes
// that fit none of them, so the type travels as text.
var encounterTypeText = map[string]string{
	edge.EncounterOPD:          "Outpatient consultation",
	edge.EncounterANC:          "Antenatal care visit",
	edge.EncounterImmunization: "Immunization visit",
	edge.EncounterFollowUp:     "Follow-up visit",
}
