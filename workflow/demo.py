"""The demo population: the EP PerMed JTC2024 call with about forty proposals in every lifecycle state, an
open copy of the call for visitors to try, and one account per role.

Everything is made by the real operations (create_user, grant_role, load_call, create_proposal,
add_partner, transition, open_checks, sign_off, decide_eligibility) with the clock frozen at plausible
instants of the 2024 calendar, so the audit chain, the submissions and the outbox are what the application
itself would have written. The data is deterministic (random.Random(2024)); only the open call's dates
follow the real current date. Loading twice changes nothing: the second run finds the secretariat account
and only reports.

A note on closing stages. `close_stage` moves every submitted proposal of a stage to the eligibility check
and lapses every draft, so after it no proposal of the stage can be left in draft, submitted, invited,
full_draft or full_submitted. To show those states next to the later ones in one call, the demo closes the
stages proposal by proposal after the deadline, firing the same transitions close_stage fires
(`close_submission` followed by `open_checks`, and `lapse`); the `stage_closed` guard accepts a passed
deadline. A few proposals are left behind as a secretariat would find them before closing.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow import audit
from workflow.access import can
from workflow.accounts import create_user, find_user, grant_role
from workflow.callconfig import CallDef, FunderDef, load_call_file
from workflow.calls import load_call
from workflow.clock import from_local, frozen, utcnow
from workflow.countries import EU_OR_ASSOCIATED
from workflow.lifecycle import Variant, states_for
from workflow.models import Call, EligibilityCheck, Partner, Proposal, ProposalMember, User
from workflow.operations import decide_eligibility, open_checks, sign_off, transition
from workflow.proposals import (
    PartnerData,
    add_partner,
    create_proposal,
    require,
    state_counts,
    update_partner,
    update_proposal,
)
from workflow.timefmt import format_instant

CALLS_DIR = Path(__file__).resolve().parent.parent / "config" / "calls"
EPPERMED_FILE = CALLS_DIR / "eppermed-jtc2024.toml"
OPEN_CODE = "eppermed-jtc2027-open"
OPEN_TITLE = "EP PerMed Joint Transnational Call 2027 (open demo)"
DOMAIN = "demo.jointcall.example"
SEED = 2024

ADMIN = f"admin@{DOMAIN}"
SECRETARIAT = f"secretariat@{DOMAIN}"
OFFICERS = {"ANR": f"officer.anr@{DOMAIN}", "BMBF": f"officer.bmbf@{DOMAIN}", "ISCIII": f"officer.isciii@{DOMAIN}"}
REVIEWERS = (f"reviewer1@{DOMAIN}", f"reviewer2@{DOMAIN}", f"reviewer3@{DOMAIN}")
COORDINATOR_1 = f"coordinator1@{DOMAIN}"
COORDINATOR_2 = f"coordinator2@{DOMAIN}"
CO_APPLICANT = f"coapplicant@{DOMAIN}"

# (role, e-mail, password, name): every account a visitor can log in with.
DEMO_ACCOUNTS: list[tuple[str, str, str, str]] = [
    ("Administrator", ADMIN, "demo-administrator", "Søren Ødegaard"),
    ("Joint Call Secretariat (both EP PerMed calls)", SECRETARIAT, "demo-secretariat", "Élodie Marchand"),
    ("Funder officer, ANR (France)", OFFICERS["ANR"], "demo-officer-anr", "François Lefèvre"),
    ("Funder officer, BMBF (Germany)", OFFICERS["BMBF"], "demo-officer-bmbf", "Jürgen Müller"),
    ("Funder officer, ISCIII (Spain)", OFFICERS["ISCIII"], "demo-officer-isciii", "Begoña Martínez Ruiz"),
    ("Reviewer", REVIEWERS[0], "demo-reviewer-1", "Łucja Wójcik"),
    ("Reviewer", REVIEWERS[1], "demo-reviewer-2", "Henrik Söderström"),
    ("Reviewer", REVIEWERS[2], "demo-reviewer-3", "Aoife Ní Bhriain"),
    ("Coordinator: funded JTC2024 proposal, draft in the open call", COORDINATOR_1, "demo-coordinator-1",
     "Zoë García"),
    ("Coordinator: JTC2024 proposal in rebuttal", COORDINATOR_2, "demo-coordinator-2", "Inês Gonçalves"),
    ("Co-applicant (invited partner PI)", CO_APPLICANT, "demo-coapplicant", "Kärt Tamm"),
]

_ACCOUNT = {email: (role, password, name) for role, email, password, name in DEMO_ACCOUNTS}


# ---------------------------------------------------------------------------------------------------------
# Organisations and people


class Org(NamedTuple):
    name: str
    country: str
    kind: str  # partner type
    funder: str | None  # acronym; None = brings its own funding
    slug: str
    region: str | None = None


ORGS: tuple[Org, ...] = (
    # France (ANR)
    Org("Institut Curie", "FR", "clinical", "ANR", "curie"),
    Org("Inserm – Institut national de la santé et de la recherche médicale", "FR", "academia", "ANR", "inserm"),
    Org("Université Paris Cité", "FR", "academia", "ANR", "u-paris"),
    Org("Hospices Civils de Lyon", "FR", "clinical", "ANR", "chu-lyon"),
    Org("Gustave Roussy", "FR", "clinical", "ANR", "gustaveroussy"),
    Org("Institut Pasteur", "FR", "academia", "ANR", "pasteur"),
    Org("Owkin SAS", "FR", "industry", "ANR", "owkin"),
    # Germany (BMBF, BMG, Saxony)
    Org("Charité – Universitätsmedizin Berlin", "DE", "clinical", "BMBF", "charite"),
    Org("Deutsches Krebsforschungszentrum (DKFZ)", "DE", "academia", "BMBF", "dkfz"),
    Org("Ludwig-Maximilians-Universität München", "DE", "academia", "BMBF", "lmu"),
    Org("Universitätsklinikum Heidelberg", "DE", "clinical", "BMBF", "ukhd"),
    Org("Universitätsklinikum Hamburg-Eppendorf", "DE", "clinical", "BMG", "uke"),
    Org("Deutsche Rheuma-Liga Bundesverband e.V.", "DE", "patient_organisation", "BMG", "rheuma-liga"),
    Org("Technische Universität Dresden", "DE", "academia", "SMWK", "tu-dresden", "Saxony"),
    Org("Universitätsklinikum Leipzig", "DE", "clinical", "SMWK", "uk-leipzig", "Saxony"),
    # Spain (ISCIII)
    Org("Hospital Clínic de Barcelona", "ES", "clinical", "ISCIII", "clinic-barcelona"),
    Org("Centro Nacional de Investigaciones Oncológicas (CNIO)", "ES", "academia", "ISCIII", "cnio"),
    Org("Hospital Universitario La Paz", "ES", "clinical", "ISCIII", "lapaz"),
    Org("Instituto de Investigación Sanitaria La Fe", "ES", "clinical", "ISCIII", "iislafe"),
    Org("Universidad de Navarra", "ES", "academia", "ISCIII", "unav"),
    # Italy (Ministry of Health, Lombardy)
    Org("IRCCS Azienda Ospedaliero-Universitaria di Bologna", "IT", "clinical", "IT-MoH", "aosp-bo"),
    Org("IRCCS Ospedale San Raffaele", "IT", "clinical", "IT-MoH", "hsr"),
    Org("IRCCS Istituto Giannina Gaslini", "IT", "clinical", "IT-MoH", "gaslini"),
    Org("Fondazione IRCCS Istituto Nazionale dei Tumori", "IT", "clinical", "FRRB", "istitutotumori", "Lombardy"),
    Org("Università degli Studi di Milano", "IT", "academia", "FRRB", "unimi", "Lombardy"),
    # Ireland
    Org("Trinity College Dublin", "IE", "academia", "SFI", "tcd"),
    Org("University College Cork", "IE", "academia", "SFI", "ucc"),
    Org("St James's Hospital Dublin", "IE", "clinical", "HRB", "stjames"),
    Org("RCSI University of Medicine and Health Sciences", "IE", "academia", "HRB", "rcsi"),
    Org("IPPOSI – Irish Platform for Patient Organisations, Science and Industry", "IE", "patient_organisation",
        "HRB", "ipposi"),
    # Belgium
    Org("Université catholique de Louvain", "BE", "academia", "F.R.S.-FNRS", "uclouvain", "Wallonia-Brussels"),
    Org("Université libre de Bruxelles", "BE", "academia", "F.R.S.-FNRS", "ulb", "Wallonia-Brussels"),
    Org("Biocartis NV", "BE", "industry", "VLAIO", "biocartis", "Flanders"),
    # Portugal
    Org("Universidade de Lisboa", "PT", "academia", "FCT", "ulisboa"),
    Org("Universidade do Porto", "PT", "academia", "FCT", "up"),
    Org("Centro Hospitalar Universitário de São João", "PT", "clinical", "FCT", "chsj"),
    Org("Fundação Champalimaud", "PT", "academia", "FCT", "champalimaud"),
    # Central and northern Europe
    Org("Univerzita Karlova", "CZ", "academia", "AZV-CR", "cuni"),
    Org("Fakultní nemocnice v Motole", "CZ", "clinical", "AZV-CR", "fnmotol"),
    Org("Semmelweis Egyetem", "HU", "academia", "NKFIH", "semmelweis"),
    Org("Szegedi Tudományegyetem", "HU", "academia", "NKFIH", "u-szeged"),
    Org("Medizinische Universität Wien", "AT", "academia", "FWF", "meduniwien"),
    Org("Medizinische Universität Innsbruck", "AT", "academia", "FWF", "i-med"),
    Org("Karolinska Institutet", "SE", "academia", "VR", "ki"),
    Org("Uppsala universitet", "SE", "academia", "VR", "uu"),
    Org("Rigshospitalet", "DK", "clinical", "IFD", "rigshospitalet"),
    Org("Aarhus Universitet", "DK", "academia", "IFD", "au"),
    Org("Helsingin yliopisto", "FI", "academia", "AKA", "helsinki"),
    Org("Tampereen yliopisto", "FI", "academia", "AKA", "tuni"),
    Org("Universitetet i Oslo", "NO", "academia", "RCN", "uio"),
    Org("Oslo universitetssykehus", "NO", "clinical", "RCN", "ous"),
    Org("Luxembourg Institute of Health", "LU", "academia", "FNR", "lih"),
    Org("Hacettepe Üniversitesi", "TR", "academia", "TUBITAK", "hacettepe"),
    # Widening countries (one of them allows a seventh partner)
    Org("Uniwersytet Jagielloński – Collegium Medicum", "PL", "academia", "NCBR", "uj"),
    Org("Gdański Uniwersytet Medyczny", "PL", "academia", "NCBR", "gumed"),
    Org("Tartu Ülikool", "EE", "academia", "ETAg", "ut"),
    Org("Rīgas Stradiņa universitāte", "LV", "academia", "LCS", "rsu"),
    Org("Universitatea de Medicină și Farmacie „Carol Davila” din București", "RO", "academia", "UEFISCDI",
        "umfcd"),
    Org("Biomedicínske centrum SAV", "SK", "academia", "SAS", "bmc-sav"),
    Org("Sveučilište u Zagrebu", "HR", "academia", "MSE", "unizg"),
    # Outside Europe
    Org("McGill University", "CA", "academia", "FRQS", "mcgill", "Quebec"),
    Org("University of Toronto", "CA", "academia", "CIHR", "utoronto"),
    Org("University of Cape Town", "ZA", "academia", "SAMRC", "uct"),
    # Partners bringing their own funding (non-participating country, or not fundable by their national FO)
    Org("Universitätsspital Zürich", "CH", "clinical", None, "usz"),
    Org("University College London", "GB", "academia", None, "ucl"),
    Org("Università di Bologna", "IT", "academia", None, "unibo"),
)
ORG_BY_NAME = {o.name: o for o in ORGS}
FUNDED_ORGS = tuple(o for o in ORGS if o.funder)
OWN_FUNDED_ORGS = tuple(o for o in ORGS if not o.funder)
# Coordinators come from academic or clinical partners of the larger European programmes.
LEAD_ORGS = tuple(o for o in FUNDED_ORGS if o.kind in ("academia", "clinical")
                  and o.country in ("FR", "DE", "ES", "IT", "IE", "PT", "AT", "SE", "DK", "FI", "NO", "BE"))

# Given names (women, men) and family names (women, men: the same list where the language does not inflect).
_NAMES: dict[str, tuple[str, str, str, str | None]] = {
    "FR": ("Amélie Chloé Hélène Céline Léa Mathilde Élise Margaux", "Étienne Jérôme Benoît Théo Raphaël Clément "
           "Gaël Loïc", "Moreau Girard Bérenger Rousseau Faure Lemaître Dubois Chevalier Mercier Fontaine", None),
    "DE": ("Annika Käthe Friederike Sabine Lena Ursula Mareike Jördis", "Lukas Jörg Sören Matthias Maximilian "
           "Björn Tobias Günter", "Schröder Weiß Köhler Hoffmann Schäfer Krüger Vogel Böhm Groß Neumann", None),
    "AT": ("Theresia Magdalena Verena Johanna", "Florian Günther Stefan Lukas", "Huber Gruber Pichler Mayrhofer "
           "Steiner Hölzl", None),
    "ES": ("María Nuria Lucía Ainhoa Pilar Rocío Itziar", "José Íñigo Álvaro Sergio Raúl Jesús Andrés Joaquín",
           "Fernández López Núñez Ibáñez Muñoz Sánchez Ortiz Peña Domínguez Gómez", None),
    "IT": ("Giulia Chiara Francesca Federica Ilaria Benedetta", "Matteo Niccolò Lorenzo Alessandro Andrea Fabrizio",
           "Rossi Esposito Bianchi Colombo Ricci Marino Greco Caruso Gallo Mancini", None),
    "IE": ("Siobhán Niamh Órla Clodagh Sinéad Gráinne", "Seán Ciarán Pádraig Eoin Darragh Cathal",
           "Murphy Kelly Byrne Ryan Walsh O'Brien Doyle McCarthy Brennan", None),
    "PT": ("Margarida Beatriz Mariana Joana Conceição", "João Gonçalo Tomás Luís Rui Sebastião",
           "Simões Magalhães Pereira Ferreira Araújo Lourenço Antunes Brandão", None),
    "BE": ("Anneleen Sofie Hélène Noémie", "Pieter Jeroen Frédéric Grégoire", "Janssens Peeters Maes Dupont "
           "Lambert Vermeulen Lejeune", None),
    "CZ": ("Tereza Kateřina Barbora Lucie Zdeňka", "Jiří Lukáš Tomáš Ondřej Václav",
           "Dvořáková Novotná Černá Procházková Kučerová Veselá", "Dvořák Novotný Černý Procházka Kučera Veselý"),
    "HU": ("Zsófia Eszter Réka Katalin Ágnes", "Gábor Ádám Bence László Péter", "Kovács Szabó Tóth Horváth "
           "Varga Kiss Molnár Németh", None),
    "NO": ("Ingrid Solveig Åse Kari Sigrid", "Øystein Håkon Bjørn Lars Eirik", "Hansen Johansen Bakken Sæther "
           "Løvås Haugen Berg", None),
    "SE": ("Åsa Märta Ingela Karin Sofia", "Göran Björn Anders Nils Måns", "Lindqvist Åkesson Nyström Ekström "
           "Sjöberg Holmgren", None),
    "DK": ("Mette Birgitte Freja Ida", "Jørgen Mads Rasmus Søren", "Nielsen Jørgensen Sørensen Rasmussen "
           "Mølgaard Kjær", None),
    "FI": ("Päivi Aino Sanna Kaisa", "Jukka Mikko Väinö Antti", "Virtanen Mäkinen Häkkinen Nieminen Järvinen "
           "Kärkkäinen", None),
    "PL": ("Małgorzata Agnieszka Katarzyna Zofia", "Paweł Michał Krzysztof Łukasz", "Kowalska Zielińska "
           "Wiśniewska Dąbrowska", "Kowalski Zieliński Wiśniewski Dąbrowski"),
    "EE": ("Liis Triin Mari Kadri", "Jüri Tõnis Märt Andres", "Saar Sepp Mägi Kask Rebane", None),
    "LV": ("Līga Ilze Māra Dace", "Jānis Andris Mārtiņš Kārlis", "Bērziņa Kalniņa Ozola Liepiņa",
           "Bērziņš Kalniņš Ozols Liepiņš"),
    "RO": ("Ioana Andreea Mădălina Ștefania", "Andrei Mihai Ștefan Răzvan", "Popescu Ionescu Constantinescu "
           "Dumitrescu Stănescu", None),
    "SK": ("Zuzana Katarína Jana Mária", "Juraj Ľubomír Peter Martin", "Kováčová Balážová Šimková",
           "Kováč Baláž Šimko"),
    "HR": ("Ivana Ana Marija Petra", "Ivan Luka Marko Tomislav", "Kovačević Babić Marić Jurić Knežević", None),
    "TR": ("Elif Ayşe Zeynep Gülşen", "Mehmet Emre Çağlar Oğuz", "Yılmaz Kaya Demir Şahin Çelik Öztürk", None),
    "LU": ("Claire Anne Sophie", "Luc Marc Yves", "Schmit Weber Wagner Kieffer Thill", None),
    "CA": ("Émilie Sarah Geneviève Olivia", "Louis Mathieu Jean-François Liam", "Tremblay Gagnon Roy Côté "
           "Bouchard Wilson", None),
    "ZA": ("Thandi Nomvula Lerato Anika", "Sipho Thabo Pieter Kagiso", "Nkosi Dlamini Mokoena Naidoo Botha",
           None),
    "CH": ("Regula Cornelia Anne-Laure", "Urs Beat Reto", "Meier Brunner Keller Zürcher Frei", None),
    "GB": ("Harriet Eleanor Priya", "Oliver Rhys Alastair", "Thompson Evans Patel Hughes Clarke", None),
}

_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "Ae", "đ": "d",
                       "ı": "i", "œ": "oe", "ð": "d", "þ": "th"})


def ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in text if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


def _mail_local(name: str) -> str:
    parts = ascii_fold(name).lower().replace("'", "").split(" ", 1)
    return ".".join(p.replace(" ", "-") for p in parts)


# ---------------------------------------------------------------------------------------------------------
# Research themes: (acronym, title, condition, keywords)

THEMES: tuple[tuple[str, str, str, str], ...] = (
    ("PROGNOSIS-AML", "Multi-omic targets for risk-adapted therapy in acute myeloid leukaemia",
     "acute myeloid leukaemia", "leukaemia; multi-omics; minimal residual disease"),
    ("PGx-MOOD", "Pharmacogenomic guidance of antidepressant treatment in primary care",
     "major depressive disorder", "pharmacogenomics; CYP2D6; CYP2C19; primary care"),
    ("CARDIOTARGET", "Proteomic and polygenic targets for personalised heart-failure therapy",
     "heart failure with preserved ejection fraction", "heart failure; proteomics; polygenic risk"),
    ("SJÖGREN-STRAT", "Interferon signatures to stratify treatment of Sjögren's disease",
     "Sjögren's disease", "autoimmunity; interferon signature; stratified medicine"),
    ("MASLD-PREDICT", "Metabolic targets for personalised management of steatotic liver disease",
     "metabolic dysfunction-associated steatotic liver disease", "MASLD; metabolomics; liver fibrosis"),
    ("EPI-GENE-KIDS", "Genotype-guided anti-seizure therapy in childhood epilepsy",
     "childhood-onset epilepsy", "epilepsy; paediatrics; precision dosing"),
    ("RA-RESPOND", "Predicting response to biologics in rheumatoid arthritis",
     "rheumatoid arthritis", "rheumatology; biologics; response prediction"),
    ("CRC-MRD", "Liquid-biopsy targets for minimal residual disease in colorectal cancer",
     "colorectal cancer", "ctDNA; liquid biopsy; adjuvant therapy"),
    ("DIA-SUBTYPE", "Subtype-specific treatment targets in adult-onset diabetes",
     "adult-onset diabetes", "diabetes subtypes; clustering; GLP-1"),
    ("IBD-TAILOR", "Tissue and microbiome targets to tailor therapy in Crohn's disease",
     "Crohn's disease", "inflammatory bowel disease; microbiome; anti-TNF"),
    ("ALS-TARGET", "Validation of patient-derived targets in amyotrophic lateral sclerosis",
     "amyotrophic lateral sclerosis", "ALS; iPSC models; antisense oligonucleotides"),
    ("PANC-IMMUNE", "Immune targets for stratified therapy of pancreatic ductal adenocarcinoma",
     "pancreatic cancer", "PDAC; tumour microenvironment; immunotherapy"),
    ("ASTHMA-ENDO", "Endotype-driven biologic therapy in severe asthma",
     "severe asthma", "asthma endotypes; type-2 inflammation; biologics"),
    ("KIDNEY-PATH", "Molecular pathology targets in chronic kidney disease progression",
     "chronic kidney disease", "nephrology; spatial transcriptomics; progression"),
    ("LUNG-RESIST", "Overcoming targeted-therapy resistance in EGFR-mutant lung cancer",
     "EGFR-mutant non-small-cell lung cancer", "NSCLC; drug resistance; EGFR"),
    ("SEPSIS-OMICS", "Host-response targets for personalised sepsis treatment",
     "sepsis", "critical care; transcriptomics; immunomodulation"),
    ("MS-PROGRESS", "Targets of progression in multiple sclerosis",
     "progressive multiple sclerosis", "neuroinflammation; neurofilament light; MRI"),
    ("GLIO-VALID", "Functional validation of druggable targets in glioblastoma",
     "glioblastoma", "neuro-oncology; organoids; CRISPR screens"),
    ("PSORIA-PM", "Personalised biologic selection in psoriatic disease",
     "psoriasis and psoriatic arthritis", "dermatology; biologics; treatment switching"),
    ("OVARIAN-HRD", "Homologous-recombination targets beyond BRCA in ovarian cancer",
     "high-grade serous ovarian cancer", "HRD; PARP inhibitors; genomics"),
    ("AF-GENOMICS", "Genomic targets for rhythm-control therapy in atrial fibrillation",
     "atrial fibrillation", "cardiology; genomics; ablation outcome"),
    ("PEDI-CARDIO", "Targets in inherited cardiomyopathies of children",
     "paediatric cardiomyopathy", "rare disease; cardiogenetics; paediatrics"),
    ("ALZ-STRATIFY", "Blood-based biomarker targets to stratify early Alzheimer's disease",
     "early Alzheimer's disease", "dementia; plasma p-tau; stratification"),
    ("HCC-TARGET", "Targets for personalised systemic therapy in hepatocellular carcinoma",
     "hepatocellular carcinoma", "liver cancer; immunotherapy; biomarkers"),
    ("COPD-PHENO", "Phenotype-specific targets for exacerbation prevention in COPD",
     "chronic obstructive pulmonary disease", "COPD; eosinophils; exacerbations"),
    ("MELANOMA-IO", "Predicting immunotherapy benefit in advanced melanoma",
     "advanced melanoma", "immune checkpoint inhibitors; TMB; radiomics"),
    ("RARE-NEPHRO", "Genetic targets for precision care in rare kidney diseases",
     "rare inherited kidney disease", "rare disease; exome sequencing; nephrology"),
    ("PAIN-PGx", "Pharmacogenomics of opioid response in chronic pain",
     "chronic non-cancer pain", "opioids; pharmacogenomics; OPRM1"),
    ("TB-HOST", "Host-directed therapy targets in drug-resistant tuberculosis",
     "drug-resistant tuberculosis", "infectious disease; host-directed therapy; transcriptomics"),
    ("PROSTATE-AR", "Androgen-receptor pathway targets in metastatic prostate cancer",
     "metastatic prostate cancer", "androgen receptor; ctDNA; resistance"),
    ("SCHIZO-PRED", "Predicting clozapine response in treatment-resistant schizophrenia",
     "treatment-resistant schizophrenia", "psychiatry; clozapine; polygenic scores"),
    ("LUPUS-SIGN", "Molecular signatures to target therapy in systemic lupus erythematosus",
     "systemic lupus erythematosus", "lupus; interferon; B-cell therapy"),
    ("OBESITY-PM", "Targets of response to anti-obesity medication",
     "obesity", "GLP-1 receptor agonists; metabolomics; weight loss"),
    ("STROKE-RECOVER", "Personalised targets for recovery after ischaemic stroke",
     "ischaemic stroke", "neurology; rehabilitation; biomarkers"),
    ("MYELOMA-CAR", "Targets of durable response to CAR-T cells in multiple myeloma",
     "multiple myeloma", "CAR-T; BCMA; haematology"),
    ("HEAD-NECK-HPV", "HPV-driven targets for treatment de-escalation in oropharyngeal cancer",
     "HPV-positive oropharyngeal cancer", "head and neck cancer; HPV; de-escalation"),
    ("THYROID-RAI", "Targets of radioiodine refractoriness in differentiated thyroid cancer",
     "differentiated thyroid cancer", "endocrinology; radioiodine; BRAF"),
    ("CF-MODULATE", "Personalised CFTR-modulator therapy for rare cystic fibrosis variants",
     "cystic fibrosis", "CFTR modulators; organoids; rare variants"),
    ("ENDO-TARGET", "Molecular targets for personalised endometriosis treatment",
     "endometriosis", "women's health; transcriptomics; hormonal therapy"),
    ("GOUT-PGx", "Genetic targets for urate-lowering therapy in gout",
     "gout", "rheumatology; ABCG2; allopurinol"),
    ("VASC-AGE", "Targets of vascular ageing for personalised hypertension care",
     "resistant hypertension", "hypertension; arterial stiffness; pharmacogenomics"),
    ("MENIÈRE-PM", "Endotype-specific targets in Ménière's disease",
     "Ménière's disease", "otology; inner ear; endotypes"),
)

TOPICS = (
    "Module 1: identification of targets for personalised medicine",
    "Module 2: validation of targets in clinical and pre-clinical settings",
    "Module 3: implementation of target-based personalised approaches",
)

# ---------------------------------------------------------------------------------------------------------
# The storylines: where each proposal ends and the steps that take it there.

_PRE = ("submit", "close")
_ELIGIBLE = _PRE + ("eligible",)
_INVITED = _ELIGIBLE + ("invite",)
_FULL = _INVITED + ("start_full", "submit_full", "close_full", "full_eligible")
_PANEL = _FULL + ("open_rebuttal", "close_rebuttal")

# (final state, steps, who: None, "coordinator1" or "coordinator2", funders that must take part)
STORIES: tuple[tuple[str, tuple[str, ...], str | None, tuple[str, ...]], ...] = (
    ("funded", _PANEL + ("recommend", "select", "fund"), "coordinator1", ("ISCIII", "ETAg")),
    ("rebuttal", _FULL + ("open_rebuttal",), "coordinator2", ("FCT",)),
    ("draft", (), None, ()),
    ("submitted", ("submit",), None, ()),
    ("not_submitted", ("lapse_pre",), None, ()),
    ("not_submitted", _INVITED + ("start_full", "lapse_full"), None, ()),
    ("eligibility_check", _PRE + ("pending",), None, ("ANR", "BMBF", "ISCIII")),
    ("ineligible", _PRE + ("ineligible",), None, ("ANR",)),
    ("ineligible", _PRE + ("ineligible",), None, ("ISCIII",)),
    ("pre_review", _ELIGIBLE, None, ()),
    ("pre_review", _ELIGIBLE, None, ()),
    *(("not_invited", _ELIGIBLE + ("not_invite",), None, ()),) * 5,
    ("invited", _INVITED, None, ()),
    ("full_draft", _INVITED + ("start_full",), None, ()),
    ("full_submitted", _INVITED + ("start_full", "submit_full"), None, ()),
    ("full_eligibility_check", _INVITED + ("start_full", "submit_full", "close_full", "pending_full"), None,
     ("ANR", "BMBF", "ISCIII")),
    ("full_ineligible", _INVITED + ("start_full", "submit_full", "close_full", "full_ineligible"), None,
     ("BMBF",)),
    ("under_review", _FULL, None, ()),
    ("under_review", _FULL, None, ()),
    ("rebuttal", _FULL + ("open_rebuttal",), None, ()),
    ("panel", _PANEL, None, ()),
    ("panel", _PANEL, None, ()),
    *(("not_recommended", _PANEL + ("not_recommend",), None, ()),) * 3,
    ("recommended", _PANEL + ("recommend",), None, ()),
    ("selected", _PANEL + ("recommend", "select"), None, ()),
    ("selected", _PANEL + ("recommend", "select"), None, ()),
    ("reserve", _PANEL + ("recommend", "reserve"), None, ()),
    ("reserve", _PANEL + ("recommend", "reserve"), None, ()),
    ("not_funded", _PANEL + ("recommend", "not_fund"), None, ()),
    ("not_funded", _PANEL + ("recommend", "reserve", "reserve_not_fund"), None, ()),
    ("funded", _PANEL + ("recommend", "select", "fund"), None, ()),
    ("funded", _PANEL + ("recommend", "select", "fund"), None, ()),
    ("withdrawn", _ELIGIBLE + ("withdraw_pre",), None, ()),
    ("withdrawn", _FULL + ("withdraw_full",), None, ()),
)

# Funders whose officers are demo accounts: their checks are left pending where a proposal waits for them.
DEMO_OFFICER_FUNDERS = tuple(OFFICERS)

INELIGIBLE_REASONS = {
    "ANR": "ANR national rules: the principal investigator's fixed-term contract ends before the planned end "
           "of the project, and the host institution has not confirmed an extension.",
    "ISCIII": "ISCIII national rules: the partner's host institution is not an accredited health research "
              "institute (IIS) or university hospital eligible for ISCIII funding.",
    "BMBF": "BMBF national rules: the mandatory German project outline was not submitted via easy-Online by "
            "the national deadline.",
}


@dataclass
class PartnerPlan:
    org: Org
    pi_name: str
    pi_email: str
    budget: dict[str, int] = field(default_factory=dict)

    @property
    def requested(self) -> int:
        return sum(self.budget.values())


@dataclass
class Spec:
    target: str
    steps: tuple[str, ...]
    who: str | None
    theme: tuple[str, str, str, str]
    topic: str
    partners: list[PartnerPlan]
    created: dt.datetime | None = None
    resubmit: bool = False
    # The one draft left in the 2024 call was never completed (no abstract, no duration).
    incomplete: bool = False
    proposal_id: int | None = None
    # The partner position whose own funder finds it ineligible, per stage.
    ineligible_position: int | None = None

    def has(self, step: str) -> bool:
        return step in self.steps


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_demo(session: Session) -> str:
    """Load the demo calls, accounts and proposals (the caller commits); a second run changes nothing."""
    if find_user(session, SECRETARIAT) is not None:
        return ("The demo is loaded already; nothing was changed.\n\n" + accounts_table())
    return _DemoLoader(session).load()


def accounts_table() -> str:
    rows = [("Role", "E-mail", "Password", "Name")] + [tuple(a) for a in DEMO_ACCOUNTS]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["Demo accounts (log in with e-mail and password):"]
    for n, (role, email, password, name) in enumerate(rows):
        lines.append(f"  {role:<{widths[0]}}  {email:<{widths[1]}}  {password:<{widths[2]}}  {name}")
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(lines)


class _Plan:
    """Steps at instants; run in time order, each with the clock frozen at its instant."""

    def __init__(self) -> None:
        self.events: list[tuple[dt.datetime, int, object]] = []

    def at(self, when: dt.datetime, fn, *args, **kwargs) -> None:
        self.events.append((when, len(self.events), partial(fn, *args, **kwargs)))

    def run(self) -> None:
        for when, _, fn in sorted(self.events, key=lambda e: (e[0], e[1])):
            with frozen(when):
                fn()
        self.events.clear()


class _DemoLoader:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.rng = random.Random(SEED)
        self.definition = load_call_file(EPPERMED_FILE)
        self.zone = self.definition.time_zone
        self.funder_defs: dict[str, FunderDef] = {f.acronym: f for f in self.definition.funders}
        self.used_emails: set[str] = set()
        self.used_names: set[str] = set()
        self.users: dict[str, User] = {}
        self.officer_of: dict[str, User] = {}
        self.extra_accounts = Counter()

    # -- helpers ----------------------------------------------------------------------------------------

    def local(self, y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> dt.datetime:
        return from_local(dt.datetime(y, m, d, hh, mm), self.zone)

    def working_time(self, first: dt.date, last: dt.date, *, start_hour: int = 8, end_hour: int = 18) -> dt.datetime:
        """A random instant on a working day between `first` and `last`, in office hours."""
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        day = self.rng.choice([d for d in days if d.weekday() < 5] or days)
        return self.local(day.year, day.month, day.day, self.rng.randint(start_hour, end_hour - 1),
                          self.rng.randint(0, 59))

    def person(self, country: str) -> str:
        women, men, family_w, family_m = _NAMES[country]
        for _ in range(200):
            female = self.rng.random() < 0.5
            given = self.rng.choice((women if female else men).split())
            family = self.rng.choice((family_w if female or family_m is None else family_m).split())
            name = f"{given} {family}"
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        raise RuntimeError(f"ran out of demo names for {country}")

    def email_for(self, name: str, org: Org) -> str:
        base = f"{_mail_local(name)}@{org.slug}.{DOMAIN}"
        email, n = base, 1
        while email in self.used_emails:
            n += 1
            email = base.replace("@", f"{n}@", 1)
        self.used_emails.add(email)
        return email

    def budget(self, funder: FunderDef | None, used: Counter, funds_left: Counter | None) -> dict[str, int]:
        if funder is None:
            return {}
        cap = funder.max_per_partner or 350_000
        if funder.max_per_project is not None:
            cap = min(cap, funder.max_per_project - used[funder.acronym])
        if funds_left is not None:
            cap = min(cap, funds_left[funder.acronym])
        low = min(cap, self.rng.choice((80_000, 100_000, 120_000, 150_000)))
        amount = low + 500 * self.rng.randint(0, (cap - low) // 500)
        used[funder.acronym] += amount
        if funds_left is not None:
            funds_left[funder.acronym] -= amount
        personnel = 100 * round(amount * self.rng.uniform(0.55, 0.68) / 100)
        consumables = 100 * round(amount * self.rng.uniform(0.15, 0.22) / 100)
        travel = 100 * round(amount * self.rng.uniform(0.03, 0.05) / 100)
        return {"personnel": personnel, "consumables": consumables, "travel": travel,
                "other": amount - personnel - consumables - travel}

    def room(self, org: Org, used: Counter, funds_left: Counter | None) -> int:
        """The largest request this organisation's funder could still grant in this consortium."""
        f = self.funder_defs[org.funder]
        cap = f.max_per_partner or 350_000
        if f.max_per_project is not None:
            cap = min(cap, f.max_per_project - used[f.acronym])
        if funds_left is not None:
            cap = min(cap, funds_left[f.acronym])
        return cap

    # -- consortia --------------------------------------------------------------------------------------

    def pick_orgs(self, lead: Org, required: tuple[str, ...], pinned: dict[str, tuple[str, str]],
                  funds_left: Counter | None) -> list[Org] | None:
        """One try at choosing the organisations; None when the result breaks a rule."""
        rules = self.definition.consortium
        chosen: list[Org] = [lead]
        countries = Counter([lead.country])

        def fits(org: Org) -> bool:
            if org in chosen or countries[org.country] >= rules.max_per_country:
                return False
            if org.funder is None:
                return True
            f = self.funder_defs[org.funder]
            if any(o.funder == org.funder for o in chosen) and (f.max_per_project or funds_left is not None):
                return False  # keep per-project caps and the funders' commitments simple
            return self.room(org, Counter(), funds_left) >= 60_000

        def take(candidates) -> None:
            pool = [o for o in candidates if fits(o)]
            fresh = [o for o in pool if countries[o.country] == 0]
            pick = self.rng.choice(fresh if fresh and self.rng.random() < 0.85 else pool)
            chosen.append(pick)
            countries[pick.country] += 1

        for name in pinned:
            org = ORG_BY_NAME[name]
            if org not in chosen:
                chosen.append(org)
                countries[org.country] += 1
        for acronym in required:
            if not any(o.funder == acronym for o in chosen):
                take([o for o in FUNDED_ORGS if o.funder == acronym])
        widening = any(o.country in rules.widening_countries for o in chosen)
        if not widening and self.rng.random() < 0.3:
            take([o for o in FUNDED_ORGS if o.country in rules.widening_countries])
            widening = True
        size = self.rng.choice((3, 4, 4, 5, 5, 5, 6, 6) + ((7, 7) if widening else ()))
        size = max(size, len(chosen))
        if size >= 4 and self.rng.random() < 0.15:
            take(OWN_FUNDED_ORGS)
        while len(chosen) < size:
            take(FUNDED_ORGS)
        funded = [o for o in chosen if o.funder]
        eu_ac = [o for o in funded if o.country in EU_OR_ASSOCIATED]
        limit = rules.max_partners + (rules.widening_bonus if widening else 0)
        if (len(funded) >= rules.min_funded_partners and len({o.country for o in funded}) >= rules.min_countries
                and len(eu_ac) >= rules.min_eu_associated_partners and len(chosen) <= limit):
            return chosen
        return None

    def consortium(self, *, lead: Org, required: tuple[str, ...], pinned: dict[str, tuple[str, str]],
                   funds_left: Counter | None) -> list[PartnerPlan]:
        """A consortium that meets the call's rules (DOMAIN.md §2), with PIs and budgets within the caps."""
        for _attempt in range(100):
            chosen = self.pick_orgs(lead, required, pinned, funds_left)
            if chosen is not None:
                break
        else:  # pragma: no cover - the seeded generator always finds one
            raise RuntimeError("could not build a valid demo consortium")
        used: Counter = Counter()
        plans = []
        for org in chosen:
            f = self.funder_defs[org.funder] if org.funder else None
            if org.name in pinned:
                pi_name, pi_email = pinned[org.name]
            else:
                pi_name = self.person(org.country)
                pi_email = self.email_for(pi_name, org)
            plans.append(PartnerPlan(org, pi_name, pi_email, self.budget(f, used, funds_left)))
        return plans

    def specs(self) -> list[Spec]:
        themes = list(THEMES)
        self.rng.shuffle(themes)
        # What the funders committed, for the proposals that end up selected or funded.
        funds_left = Counter({f.acronym: f.committed_budget for f in self.definition.funders})
        out = []
        for n, (target, steps, who, required) in enumerate(STORIES):
            pinned: dict[str, tuple[str, str]] = {}
            if who == "coordinator1":
                lead = ORG_BY_NAME["Hospital Clínic de Barcelona"]
                pinned[lead.name] = (_ACCOUNT[COORDINATOR_1][2], COORDINATOR_1)
                pinned["Tartu Ülikool"] = (_ACCOUNT[CO_APPLICANT][2], CO_APPLICANT)
            elif who == "coordinator2":
                lead = ORG_BY_NAME["Universidade de Lisboa"]
                pinned[lead.name] = (_ACCOUNT[COORDINATOR_2][2], COORDINATOR_2)
            elif "ineligible" in steps:
                # At the pre stage a partner its own funder rejects may be replaced later (rule 12), so
                # the proposal is ineligible only when it is the coordinator's own organisation.
                lead = self.rng.choice([o for o in LEAD_ORGS if o.funder == required[0]])
            else:
                lead = self.rng.choice(LEAD_ORGS)
            destined = "select" in steps
            partners = self.consortium(lead=lead, required=required, pinned=pinned,
                                       funds_left=funds_left if destined else None)
            spec = Spec(target, steps, who, themes[n], self.rng.choice(TOPICS), partners,
                        incomplete=target == "draft")
            if "ineligible" in steps or "full_ineligible" in steps:
                funder = required[0]
                spec.ineligible_position = (1 if "ineligible" in steps else
                                            max(i for i, p in enumerate(partners, 1) if p.org.funder == funder))
            out.append(spec)
        for spec in out:
            spec.created = self.working_time(dt.date(2024, 1, 15), dt.date(2024, 2, 9))
        candidates = [s for s in out if s.has("submit")]
        for spec in self.rng.sample(candidates, 5):
            spec.resubmit = True
        out.sort(key=lambda s: s.created)
        return out

    # -- texts ------------------------------------------------------------------------------------------

    def abstract(self, spec: Spec, stage: str) -> str:
        acronym, title, condition, _kw = spec.theme
        countries = sorted({p.org.country for p in spec.partners})
        parts = [
            f"{acronym} brings together {len(spec.partners)} partners from {len(countries)} countries to "
            f"identify and validate targets for personalised prevention and treatment of {condition}.",
            self.rng.choice((
                "Patients with the same diagnosis respond very differently to current treatment, and the "
                "molecular reasons are poorly understood.",
                f"Current guidelines for {condition} treat patients as one group although their disease "
                "mechanisms differ.",
                "Biomarker-guided treatment is still the exception in routine care for this condition.",
            )),
            self.rng.choice((
                "We will integrate genomic, transcriptomic and proteomic data from existing cohorts with "
                "clinical records to derive candidate targets,",
                "Building on well-characterised cohorts and biobanks of the partners, we will apply multi-omic "
                "profiling and machine learning to prioritise candidate targets,",
                "Using patient-derived models (organoids and iPSC-derived cells) and deeply phenotyped "
                "cohorts, we will map disease mechanisms to candidate targets,",
            )) + " " + self.rng.choice((
                "validate them in independent prospective samples, and assess their clinical utility.",
                "test them functionally, and validate them in an independent multinational cohort.",
                "and prepare a biomarker-stratified clinical study.",
            )),
            self.rng.choice((
                "Patient representatives take part in the design of the study and in the dissemination of "
                "its results.",
                "An ethics, legal and social aspects work package addresses data sharing under the GDPR and "
                "equitable access.",
                "Health-economic modelling will estimate the cost-effectiveness of the stratified approach.",
            )),
        ]
        if stage == "full":
            parts += [
                "Work package 1 harmonises data and samples across the clinical sites under a common FAIR "
                "data management plan; work package 2 discovers and prioritises targets; work package 3 "
                "validates them in independent samples and models; work package 4 evaluates clinical "
                "utility, health-economic impact and implementation in the participating health systems; "
                "work package 5 covers dissemination, exploitation and coordination.",
                "The consortium combines clinical, academic" + (
                    " and industrial" if any(p.org.kind == "industry" for p in spec.partners) else "")
                + " expertise; each partner leads the tasks closest to its strengths, and the national "
                "funding of each partner is requested under its funder's rules.",
                "Expected results are a validated target panel, a clinical decision-support prototype and a "
                "protocol for a prospective stratified trial, together with open data and code.",
            ]
        return " ".join(parts)

    # -- the run ----------------------------------------------------------------------------------------

    def load(self) -> str:
        s = self.session
        with frozen(self.local(2024, 1, 2, 8, 30)):
            _role, admin_pw, admin_name = _ACCOUNT[ADMIN]
            self.admin = create_user(s, None, email=ADMIN, name=admin_name, password=admin_pw, confirmed=True,
                                     is_admin=True, organisation="Jointcall demo")
        with frozen(self.local(2024, 1, 2, 9, 0)):
            self.call = load_call(s, self.admin, self.definition).call
        with frozen(self.local(2024, 1, 3, 10, 0)):
            self.secretariat = self.account(SECRETARIAT, organisation="Agence Nationale de la Recherche (JCS)",
                                            country="FR")
            grant_role(s, self.admin, self.secretariat, "secretariat", self.call.id)
        with frozen(self.local(2024, 1, 3, 11, 0)):
            self.make_officers(self.call)
        self.make_proposals()
        self.make_open_call()
        return self.report()

    def account(self, email: str, **kwargs) -> User:
        _role, password, name = _ACCOUNT[email]
        user = create_user(self.session, self.admin, email=email, name=name, password=password, confirmed=True,
                           **kwargs)
        self.users[email] = user
        return user

    def make_officers(self, call: Call) -> None:
        """One officer per funder: the demo accounts for ANR, BMBF and ISCIII, accounts without a password
        (named after the national contact) for the others, so that every partner can be signed off."""
        s = self.session
        for cf in sorted(call.funders, key=lambda cf: cf.funder.acronym):
            acronym = cf.funder.acronym
            if acronym in OFFICERS:
                user = self.account(OFFICERS[acronym], organisation=cf.funder.name, country=cf.funder.country)
            else:
                contact = (cf.national_contact or f"Officer {acronym}").split("<")[0].strip()
                name = contact.split(". ", 1)[-1] if contact.startswith(("Dr. ", "Ir. ", "Mgr. ")) else contact
                slug = re.sub(r"[^a-z0-9]+", "-", acronym.lower()).strip("-")
                user = create_user(s, self.admin, email=f"officer.{slug}@{DOMAIN}", name=name, password=None,
                                   confirmed=True, organisation=cf.funder.name, country=cf.funder.country)
                self.extra_accounts["funder officers without a password"] += 1
            grant_role(s, self.admin, user, "officer", call.id, cf.funder_id)
            self.officer_of[acronym] = user

    # -- JTC2024 proposals ------------------------------------------------------------------------------

    def make_proposals(self) -> None:
        plan = _Plan()
        specs = self.specs()
        self.specs_2024 = specs
        deadline_pre = self.call.stage("pre").deadline
        deadline_full = self.call.stage("full").deadline

        # Reviewers join for the pre-proposal evaluation.
        plan.at(self.local(2024, 3, 14, 10, 0), self.make_reviewers, self.call, grant_only=False)

        for spec in specs:
            plan.at(spec.created, self.create, spec)
            if spec.who == "coordinator1":
                plan.at(spec.created + dt.timedelta(days=1, hours=2), self.invite_co_applicant, spec)

        # Submission of pre-proposals: most in the last days before the deadline.
        for spec in specs:
            if not spec.has("submit"):
                continue
            if spec.resubmit:
                first = self.working_time(dt.date(2024, 2, 19), dt.date(2024, 2, 27))
                plan.at(first, self.fire, spec, "submit", coordinator=True)
                plan.at(first + dt.timedelta(days=1, hours=1), self.fire, spec, "reopen", coordinator=True,
                        reason="correcting the budget table before the deadline")
                plan.at(first + dt.timedelta(days=1, hours=2), self.revise_pre, spec)
                last = first + dt.timedelta(days=self.rng.randint(2, 5), hours=self.rng.randint(0, 3))
                plan.at(min(last, deadline_pre - dt.timedelta(hours=2)), self.fire, spec, "submit", coordinator=True)
            else:
                days_before = min(int(self.rng.expovariate(1 / 3)), 14)
                day = dt.date(2024, 3, 5) - dt.timedelta(days=days_before)
                when = self.local(day.year, day.month, day.day, self.rng.randint(8, 16), self.rng.randint(0, 59))
                plan.at(min(when, deadline_pre - dt.timedelta(minutes=3)), self.fire, spec, "submit",
                        coordinator=True)

        # After the deadline the secretariat moves the submissions to the eligibility check and lapses drafts.
        close_at = self.local(2024, 3, 6, 9, 0)
        for n, spec in enumerate(specs):
            if spec.has("close"):
                plan.at(close_at + dt.timedelta(minutes=n), self.close, spec, "pre")
            elif spec.has("lapse_pre"):
                plan.at(close_at + dt.timedelta(minutes=n), self.fire, spec, "lapse",
                        reason="not submitted before the deadline")
        self.schedule_checks(plan, specs, "pre", dt.date(2024, 3, 7), dt.date(2024, 3, 26))
        decide_at = self.local(2024, 3, 28, 10, 0)
        for n, spec in enumerate(specs):
            if spec.has("close") and not spec.has("pending"):
                plan.at(decide_at + dt.timedelta(minutes=n), self.decide, spec)

        for spec in specs:
            if spec.has("withdraw_pre"):
                plan.at(self.local(2024, 4, 12, 11, 20), self.fire, spec, "withdraw", coordinator=True,
                        reason="The coordinator has moved to another institution; the consortium withdraws.")

        # The Call Steering Committee met on 16 May; invitations went out on 20 May.
        invite_at = self.local(2024, 5, 20, 10, 0)
        for n, spec in enumerate(specs):
            if spec.has("invite"):
                plan.at(invite_at + dt.timedelta(minutes=n), self.fire, spec, "invite",
                        reason="CSC decision of 16 May 2024: invited to the full-proposal stage")
            elif spec.has("not_invite"):
                plan.at(invite_at + dt.timedelta(minutes=n), self.fire, spec, "not_invite",
                        reason="CSC decision of 16 May 2024: ranked below the invitation threshold "
                               "(about three times the committed budget)")

        # Full proposals.
        for spec in specs:
            if spec.has("start_full"):
                start = self.working_time(dt.date(2024, 5, 21), dt.date(2024, 6, 3))
                plan.at(start, self.fire, spec, "start_full", coordinator=True)
                plan.at(start + dt.timedelta(days=self.rng.randint(1, 4), hours=1), self.revise_full, spec)
            if spec.has("submit_full"):
                days_before = min(int(self.rng.expovariate(1 / 2)), 9)
                day = dt.date(2024, 6, 20) - dt.timedelta(days=days_before)
                when = self.local(day.year, day.month, day.day, self.rng.randint(8, 16), self.rng.randint(0, 59))
                plan.at(min(when, deadline_full - dt.timedelta(minutes=3)), self.fire, spec, "submit_full",
                        coordinator=True)
        close_full_at = self.local(2024, 6, 21, 9, 0)
        for n, spec in enumerate(specs):
            if spec.has("close_full"):
                plan.at(close_full_at + dt.timedelta(minutes=n), self.close, spec, "full")
            elif spec.has("lapse_full"):
                plan.at(close_full_at + dt.timedelta(minutes=n), self.fire, spec, "lapse",
                        reason="full proposal not submitted before the deadline")
        self.schedule_checks(plan, specs, "full", dt.date(2024, 6, 24), dt.date(2024, 7, 5))
        decide_full_at = self.local(2024, 7, 8, 10, 0)
        for n, spec in enumerate(specs):
            if spec.has("close_full") and not spec.has("pending_full"):
                plan.at(decide_full_at + dt.timedelta(minutes=n), self.decide, spec)
        for spec in specs:
            if spec.has("withdraw_full"):
                plan.at(self.local(2024, 7, 22, 15, 5), self.fire, spec, "withdraw", coordinator=True,
                        reason="A key clinical partner had to leave the consortium; the coordinator withdraws.")

        # Peer review, rebuttal (19-26 August), panel (17-18 September), CSC ranking (8 October).
        for n, spec in enumerate(specs):
            if spec.has("open_rebuttal"):
                plan.at(self.local(2024, 8, 19, 9, 0) + dt.timedelta(minutes=n), self.fire, spec, "open_rebuttal")
            if spec.has("close_rebuttal"):
                plan.at(self.local(2024, 8, 26, 17, 5) + dt.timedelta(minutes=n), self.fire, spec,
                        "close_rebuttal")
        ranked = [s for s in specs if s.has("recommend")]
        self.rng.shuffle(ranked)
        ranked.sort(key=lambda s: ("select" not in s.steps, "not_fund" in s.steps, "reserve" in s.steps))
        rank = {id(s): i for i, s in enumerate(ranked, 1)}
        panel_at = self.local(2024, 9, 18, 16, 0)
        for n, spec in enumerate(specs):
            if spec.has("recommend"):
                score = max(10.0, 15.0 - 0.5 * rank[id(spec)])
                plan.at(panel_at + dt.timedelta(minutes=n), self.fire, spec, "recommend",
                        reason=f"Panel consensus {score:.1f}/15, every criterion at or above its threshold")
            elif spec.has("not_recommend"):
                weak = self.rng.choice(("Excellence", "Impact", "Quality and efficiency of the implementation"))
                plan.at(panel_at + dt.timedelta(minutes=n), self.fire, spec, "not_recommend",
                        reason=f"Panel consensus {self.rng.choice((8.5, 9.0, 9.5))}/15; {weak} below the "
                               f"threshold of 3/5")
        csc_at = self.local(2024, 10, 8, 14, 0)
        for n, spec in enumerate(specs):
            when = csc_at + dt.timedelta(minutes=n)
            if spec.has("select"):
                plan.at(when, self.fire, spec, "select",
                        reason=f"Rank {rank[id(spec)]}: every partner fits its funder's remaining budget")
            elif spec.has("reserve"):
                plan.at(when, self.fire, spec, "place_in_reserve",
                        reason=f"Rank {rank[id(spec)]}: a funder's budget is exhausted; on the reserve list")
            elif spec.has("not_fund"):
                plan.at(when, self.fire, spec, "not_fund",
                        reason=f"Rank {rank[id(spec)]}: no funding available for two of the partners")
        for spec in specs:
            if spec.has("fund"):
                plan.at(self.working_time(dt.date(2024, 12, 2), dt.date(2024, 12, 13)), self.fire, spec, "fund",
                        reason="Consortium agreement signed and all national grant agreements concluded")
            if spec.has("reserve_not_fund"):
                plan.at(self.local(2024, 12, 16, 10, 0), self.fire, spec, "not_fund",
                        reason="The reserve list closed without budget becoming available")
        plan.run()

    def make_reviewers(self, call: Call, grant_only: bool) -> None:
        for email in REVIEWERS:
            user = self.users[email] if grant_only else self.account(email)
            grant_role(self.session, self.admin, user, "reviewer", call.id)

    def coordinator(self, spec: Spec) -> User:
        lead = spec.partners[0]
        user = self.users.get(lead.pi_email)
        if user is None:
            if lead.pi_email in _ACCOUNT:
                user = self.account(lead.pi_email, organisation=lead.org.name, country=lead.org.country)
            else:
                user = create_user(self.session, None, email=lead.pi_email, name=lead.pi_name, password=None,
                                   confirmed=True, organisation=lead.org.name, country=lead.org.country)
                self.users[lead.pi_email] = user
                self.extra_accounts["coordinators without a password"] += 1
        return user

    def create(self, spec: Spec, call: Call | None = None) -> None:
        s = self.session
        call = call or self.call
        user = self.coordinator(spec)
        acronym, title, _condition, keywords = spec.theme
        proposal = create_proposal(s, user, call, acronym=acronym, title=title)
        spec.proposal_id = proposal.id
        fields = {"keywords": keywords, "topic": spec.topic}
        if not spec.incomplete:
            fields.update(abstract=self.abstract(spec, "pre"), duration_months=self.rng.choice((36, 36, 36, 30)))
        update_proposal(s, user, proposal, **fields)
        funder_ids = {cf.funder.acronym: cf.funder_id for cf in call.funders}
        for p in spec.partners:
            add_partner(s, user, proposal, PartnerData(
                organisation=p.org.name, country=p.org.country, pi_name=p.pi_name, pi_email=p.pi_email,
                partner_type=p.org.kind, region=p.org.region, funder_id=funder_ids.get(p.org.funder),
                own_funded=p.org.funder is None, budget=dict(p.budget),
            ))

    def invite_co_applicant(self, spec: Spec) -> None:
        """The coordinator invites a partner PI to edit the proposal. There is no operation for members
        yet, so this writes the row with the access check and the audit event an operation would write."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        user = self.account(CO_APPLICANT, organisation="Tartu Ülikool", country="EE")
        coordinator = proposal.coordinator
        require(can(coordinator, "proposal.manage_members", proposal))
        proposal.members.append(ProposalMember(user=user, can_edit=True))
        s.flush()
        audit.record(s, coordinator, "proposal.member_added", proposal,
                     after={"user_id": user.id, "email": user.email, "can_edit": True})

    def fire(self, spec: Spec, trigger: str, *, coordinator: bool = False, reason: str | None = None) -> None:
        proposal = self.session.get(Proposal, spec.proposal_id)
        actor = proposal.coordinator if coordinator else self.secretariat
        transition(self.session, actor, spec.proposal_id, trigger, reason=reason)

    def revise_pre(self, spec: Spec) -> None:
        """Between a reopen and the new submission: the coordinator trims a partner's budget."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        partner = max((p for p in proposal.partners if p.requests_funding), key=lambda p: p.requested_amount)
        self.rebudget(proposal.coordinator, partner, 0.95)

    def revise_full(self, spec: Spec) -> None:
        """The full proposal: a longer abstract and refined (never higher) budgets."""
        s = self.session
        proposal = s.get(Proposal, spec.proposal_id)
        user = proposal.coordinator
        update_proposal(s, user, proposal, abstract=self.abstract(spec, "full"),
                        keywords=proposal.keywords + "; " + self.rng.choice(
                            ("real-world data", "clinical decision support", "health economics",
                             "patient-reported outcomes")))
        funded = [p for p in proposal.partners if p.requests_funding]
        for partner in self.rng.sample(funded, k=min(2, len(funded))):
            self.rebudget(user, partner, self.rng.uniform(0.9, 0.98))

    def rebudget(self, user: User, partner: Partner, factor: float) -> None:
        budget = dict(partner.budget)
        budget["personnel"] = 100 * round(budget["personnel"] * factor / 100)
        update_partner(self.session, user, partner, PartnerData(
            organisation=partner.organisation, country=partner.country, pi_name=partner.pi_name,
            pi_email=partner.pi_email, partner_type=partner.partner_type, region=partner.region,
            funder_id=partner.funder_id, own_funded=partner.own_funded, budget=budget,
        ))

    def close(self, spec: Spec, stage: str) -> None:
        """What close_stage does for one submitted proposal (see the module docstring)."""
        proposal = transition(self.session, self.secretariat, spec.proposal_id, "close_submission")
        open_checks(self.session, proposal, stage)

    def schedule_checks(self, plan: _Plan, specs: list[Spec], stage: str, first: dt.date, last: dt.date) -> None:
        closing, pending, failing = (("close", "pending", "ineligible") if stage == "pre"
                                     else ("close_full", "pending_full", "full_ineligible"))
        for spec in specs:
            if not spec.has(closing):
                continue
            plan.at(self.working_time(first, first + dt.timedelta(days=6)), self.sign, spec, stage, None,
                    "eligible", None)
            for position, p in enumerate(spec.partners, 1):
                if p.org.funder is None:
                    continue
                if spec.has(pending) and p.org.funder in DEMO_OFFICER_FUNDERS:
                    continue  # waiting for a demo officer: try it
                verdict, reason = "eligible", None
                if spec.has(failing) and position == spec.ineligible_position:
                    verdict, reason = "ineligible", INELIGIBLE_REASONS[p.org.funder]
                plan.at(self.working_time(first, last), self.sign, spec, stage, position, verdict, reason)

    def sign(self, spec: Spec, stage: str, position: int | None, verdict: str, reason: str | None) -> None:
        s = self.session
        query = select(EligibilityCheck).where(EligibilityCheck.proposal_id == spec.proposal_id,
                                               EligibilityCheck.stage == stage)
        if position is None:
            check = s.scalar(query.where(EligibilityCheck.partner_id.is_(None)))
            actor = self.secretariat
        else:
            check = s.scalar(query.join(Partner, Partner.id == EligibilityCheck.partner_id)
                             .where(Partner.position == position))
            actor = self.officer_of[spec.partners[position - 1].org.funder]
        sign_off(s, actor, check.id, verdict, reason)

    def decide(self, spec: Spec) -> None:
        decide_eligibility(self.session, self.secretariat, spec.proposal_id)

    # -- the open call ----------------------------------------------------------------------------------

    def make_open_call(self) -> None:
        """A copy of the EP PerMed call whose pre-proposal stage is open now, with a draft to submit."""
        s = self.session
        zone = ZoneInfo(self.zone)
        today = utcnow().astimezone(zone).date()  # the real date (or the CLI's --now)

        def day(offset: int, hh: int, mm: int = 0) -> dt.datetime:
            d = today + dt.timedelta(days=offset)
            return dt.datetime(d.year, d.month, d.day, hh, mm)

        data = self.definition.model_dump()
        data["code"], data["title"] = OPEN_CODE, OPEN_TITLE
        data["description"] = ("A copy of the EP PerMed JTC2024 call whose pre-proposal stage is open now, so "
                               "that visitors of the demo can draft and submit a proposal. " + data["description"])
        pre, full = data["stages"]
        pre["opens"], pre["deadline"] = day(-14, 0), day(30, 17)
        full["opens"], full["deadline"] = day(90, 0), day(120, 17)
        definition = CallDef.model_validate(data)
        with frozen(from_local(day(-15, 10), self.zone)):
            self.open_call = load_call(s, self.admin, definition).call
            grant_role(s, self.admin, self.secretariat, "secretariat", self.open_call.id)
            for acronym, officer in sorted(self.officer_of.items()):
                funder_id = next(cf.funder_id for cf in self.open_call.funders if cf.funder.acronym == acronym)
                grant_role(s, self.admin, officer, "officer", self.open_call.id, funder_id)
            self.make_reviewers(self.open_call, grant_only=True)
        lead = ORG_BY_NAME["Hospital Clínic de Barcelona"]
        partners = self.consortium(lead=lead, required=("ANR", "BMBF"),
                                   pinned={lead.name: (_ACCOUNT[COORDINATOR_1][2], COORDINATOR_1)},
                                   funds_left=None)
        used = [sp.theme for sp in self.specs_2024]
        theme = next(t for t in THEMES if t not in used)
        spec = Spec("draft", (), "coordinator1", theme, TOPICS[2], partners)
        with frozen(from_local(day(-6, 15, 20), self.zone)):
            self.create(spec, self.open_call)
        self.open_spec = spec

    # -- the report -------------------------------------------------------------------------------------

    def report(self) -> str:
        s = self.session
        lines = ["Demo loaded.", "", "Calls:"]
        for call in (self.call, self.open_call):
            n = s.scalar(select(func.count(Proposal.id)).where(Proposal.call_id == call.id))
            stages = "; ".join(
                f"{st.kind} stage {format_instant(st.opens_at, call.time_zone, 'd MMM y')} to "
                f"{format_instant(st.deadline, call.time_zone, 'd MMM y, HH:mm zzz')}" for st in call.stages)
            lines.append(f"  {call.code}: {call.title}")
            lines.append(f"    {n} proposal{'s' if n != 1 else ''}; {stages}")
        lines += ["", f"Proposals per state ({self.call.code}, then {self.open_call.code}):"]
        counts = state_counts(s, self.call)
        open_counts = state_counts(s, self.open_call)
        width = max(len(st.name) for st in states_for(Variant(True, True)))
        for st in states_for(Variant(True, True)):
            extra = f"  (+{open_counts[st.name]} in the open call)" if open_counts[st.name] else ""
            lines.append(f"  {st.name:<{width}}  {counts[st.name]:>3}{extra}")
        lines.append(f"  {'total':<{width}}  {sum(counts.values()):>3}")
        lines += ["", accounts_table()]
        if self.extra_accounts:
            lines += ["", "Other accounts have no password and cannot log in: " + ", ".join(
                f"{n} {what}" for what, n in sorted(self.extra_accounts.items())) + "."]
        return "\n".join(lines)
