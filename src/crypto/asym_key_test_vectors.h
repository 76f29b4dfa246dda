// Known keys and vectors for asym_key_test.cc, made once with Python's
// `cryptography` package (the wheel bundles OpenSSL 4.0.0): see the comment
// on each.
#pragma once

namespace coffer::crypto::testing {

// An RSA-2048 private JWK as Python's azure-keyvault-keys test imports one:
// n, d, p and q with a leading 0x00 byte, e as 0x010001, and no dp, dq or qi.
constexpr char kRsaJwkN[] =
    "ANIMLoHkRKRnTGUvEr5xbgKo9MysZZcGwH8F6KDPCavq-P7FQuF7JlgTsl5gfiujjFhnRM7bI7NUk8l_z72sf6"
    "sMu-qFw4wYpq0GoDlI8iLO1ypqkCQz2wNEmIZfSBl95LSCRVv1HJh4MCrZ7lKJUzcSwY5weKX1ACuxjKzlv8BO"
    "eSIXkN6q5DE9SxCv2ICgGXAeceyqlJgtyKsWpQGgwjsR2nz5WlAMAGZosATW3Csi1QNu9S_KEze3xoGpiza_hB"
    "TF67a09aJIRV6JmEs1RIyobuI1NTskLdbORVhf-97fRmtB6AjdgkNxigzJFQdYdWXM6z0C6Mr2mJ-BZrsj-Es";
constexpr char kRsaJwkD[] =
    "AAjDNVV53ls1a_x0oEWNmddGkR_QuVQ5leI2ruO2f2LKpKSMOiQJ7SmTeMdzIxBS_FHbzQUMI0sh5iBr0pDJF3"
    "JdT6GS_vtjM-DX--sn3eIR2uwMEgNQnnxeajaA1xMpK1dUb-xMJ2s86FWBTe3niK8teyGkE4Ro2h74gzPbScqN"
    "6CQH2GSIBN3XGTYHRaoT0pLCDxP7Ly4cjDCx7LIMZLT8TaV_fKdfHitLaTIZ6g5zg3IEiy8XUFJYuE1zy6390q"
    "F-p4v7tHc9v7GIg12tIp8Tv0s8wsBIW1gSY2JboVBXC0s2jRWTWhvjav8sW0dwjIDnw6VKcbpYkuq3T0nPBoE";
constexpr char kRsaJwkP[] =
    "APRNp2kIsfs7ad7BAXeI2R3bCiuWbrdwgE2SCc16hveDHPQ2U-Y31eZQiRe-2gg9qAXoKqMCfegdVdLFHx5Q04"
    "ZwimUPxQKVmLu4OAolH37Cr_Z9_ihPTuiQfe-xbtfC0srKjlHLM9lYKrgzNYDi8QK8CYW3cdkz74KBXp52Ftnh";
constexpr char kRsaJwkQ[] =
    "ANwaqottz5RTpvD7LTC2d7S9SInwJXhIGeH7E3QW0r7KltSA-Aalz1U5forV5TeFlZk3W83_XpNx7ZiE6XQIzQ"
    "hhQZvBCcA13YTZDL4Sj9h_Bwruym8kGRkJ2afLXWom4IIofOAzglzFTgpZuwzzitj25N3WpZC7tGGnkmVJJE-r";
constexpr char kRsaJwkE[] = "AQAB";
// The same modulus, minimal (what PublicJwk must return), and the CRT values
// the import must derive.
constexpr char kRsaMinimalN[] =
    "0gwugeREpGdMZS8SvnFuAqj0zKxllwbAfwXooM8Jq-r4_sVC4XsmWBOyXmB-K6OMWGdEztsjs1STyX_Pvax_qw"
    "y76oXDjBimrQagOUjyIs7XKmqQJDPbA0SYhl9IGX3ktIJFW_UcmHgwKtnuUolTNxLBjnB4pfUAK7GMrOW_wE55"
    "IheQ3qrkMT1LEK_YgKAZcB5x7KqUmC3IqxalAaDCOxHafPlaUAwAZmiwBNbcKyLVA271L8oTN7fGgamLNr-EFM"
    "XrtrT1okhFXomYSzVEjKhu4jU1OyQt1s5FWF_73t9Ga0HoCN2CQ3GKDMkVB1h1ZczrPQLoyvaYn4FmuyP4Sw";
constexpr char kRsaDp[] =
    "4-XM1d6WqZazHGlPxQKUB5Xd1utuPRFlnvcszdIPNbXJvMcxXQGZOFDIkq4nFqjtpRT_MTGR4oX7GbNpZA5iRH"
    "eXos8jKVYENJmVLWGUD9vt6jN-dHwHUEv6Ly-GByBnI2Xxfbvhkk79Cvg6YRFTYwmmmGaYfdZFB6lHauseRgE";
constexpr char kRsaDq[] =
    "UywseAWl5Dn8IqH3wKmi8IR6bc12i05LoY5cGokpV_l8J48YqoJrp5vTSqlrNaDgGAbIRT6TwYnSq8jF4xgUSm"
    "9d-Hposd5o9_OBEi43dysBQUtc6cStSz3iprp9cUiBnA2qqposT9wrElQ4D7vUIwqhD4c2B0w27JQDCQ0rkIM";
constexpr char kRsaQi[] =
    "jF4eyR9BPaKD3aqgC-leOzuefuzcFgx46vADZsrt3RgC9Rqejs3h41cRnh_0DdoIyEUtHe3g0HbfyErFRurcGr"
    "w_G8WfhGmn7DDSTHQbnSmtNHF320K1HH6ir7DC-E8brWJYG-vDKxP_sRKjM3bVIY_WmtZfUQvve335Ni4D-lE";

// RSA1_5 implicit rejection with the key above: ciphertexts whose padding is
// wrong and the synthetic messages OpenSSL 4.0 (implicit rejection since 3.2)
// returned for them from `key.decrypt(c, padding.PKCS1v15())`; then one valid
// ciphertext of "implicit rejection keeps this".
constexpr char kRejectedCiphertext1[] =
    "AXZfhbfU8Il1CSHnO9NimnYMH-emHWLz1p08T-2T_8ZlXmhN6uCATkckXvdR8eBE9MlEQ4TfCDJ_ydjODM6c2u"
    "l2X4W31PCJdQkh5zvTYpp2DB_nph1i89adPE_tk__GZV5oTerggE5HJF73UfHgRPTJREOE3wgyf8nYzgzOnNrp"
    "dl-Ft9TwiXUJIec702Kadgwf56YdYvPWnTxP7ZP_xmVeaE3q4IBORyRe91Hx4ET0yURDhN8IMn_J2M4Mzpza6X"
    "ZfhbfU8Il1CSHnO9NimnYMH-emHWLz1p08T-2T_8ZlXmhN6uCATkckXvdR8eBE9MlEQ4TfCDJ_ydjODM6c2g";
constexpr char kSyntheticMessage1[] =
    "ldQ3p1b-y0cPhpKlhiXARoASOisfL4S1B0j9MP8BsmSYcXVh8bGUy3rAT7VWmz3ss_Jiu8UZ1K6XaXY-2WW_gk"
    "UoSmhTpADgsrAdaGg7YUu4kMv4xOgZW8Rsim96JRoTtB2SJfFX2KoMmymp0J0CeDZnhSQ0q9v7hvJTjPrMYQGQ"
    "EGALExbTHpocGopNdmSfSPROw72QSG0ALlPG9OAz0_CloPSsNUqC9tQQBa7OGQGjeDuuu-fRZbzgYIF3MLgHbG"
    "57L5xUwXBV0t_fXC_y5NFrP5GVZcdD6PB-1sUBFu-bi5N5R-Wep8K4vCIPz5kd4-xi";
constexpr char kRejectedCiphertext2[] =
    "ARTCm57J05A1ot6EBCkj511hmyWhg65_Ed0Tn6OBnqYb5abKSqroJ6b7hE1kZsBfli0kBJHFg59C3_fGfNDBFr"
    "AUwpueydOQNaLehAQpI-ddYZsloYOufxHdE5-jgZ6mG-Wmykqq6Cem-4RNZGbAX5YtJASRxYOfQt_3xnzQwRaw"
    "FMKbnsnTkDWi3oQEKSPnXWGbJaGDrn8R3ROfo4GephvlpspKqugnpvuETWRmwF-WLSQEkcWDn0Lf98Z80MEWsB"
    "TCm57J05A1ot6EBCkj511hmyWhg65_Ed0Tn6OBnqYb5abKSqroJ6b7hE1kZsBfli0kBJHFg59C3_fGfNDBFg";
constexpr char kSyntheticMessage2[] =
    "7RCkINnw-1CTm4MyZN4WxQ11gFa_ljmnpFVGsHQwqyhC7YR9X1C7NZkiOOxkTz4sOS6_FksYwJoL-qNWeEA8Ta"
    "QODm1glBWC7z_4FJiXyuCU2qZTmpZzBRuwy0vQ4QkI-bdGC0Y41SCiRJWDL6l_HsiCeoeL93MFXn_3Bafsq5i1"
    "UJRP6IXAVkgqJPXaIxoc-EhrXpujKNQE3Zx4rmOA_A2C_QmJl3xJukUFV8q3yyecux9qbxbtQpidQhmpIRfIvA"
    "eIi7S7e_ooL9u7rg";
constexpr char kValidCiphertext[] =
    "khy9H19sxOskMP-0Yk-U9JO_dvUcxGTFN2OFDLLjS1jg71aGpNgyzBAKybXzZxnGm45hb7MEomck7uuQQhCn5F"
    "2GFoyOrUJdiKrp_NrJUDDldjb3YBnvolHjoUmwRmiQE5FTicnXUxE059xULHK8sPmQBjUDZwU-rz76jRbGtkWY"
    "BCpIF8m6HU6_B4jNx14wBmjvth-kDr3gOKKFrjd0Et-39I1VtIlPwmi8v0Mu_QhE56ToJ9iCHMHMK064P4ivPS"
    "UxYjD4s55mW_VqONM5EwqucK3sFQAmXIMhLam7X1EonrGLuko4eHXcR0P1MHgUgZNWO6M6iz02DvA3RfhyNQ";

// A P-521 private JWK whose x and y both start with a 0x00 byte; x is given
// without it (65 bytes), y with it (66 bytes). kP521X is x at full length.
constexpr char kP521JwkX[] =
    "PYQFUL8CIEAbN4iHYaY9H8WkXQ2J-FV2Lb3gBknQHhQpIdA29jmGROjIM19y-5qRl8BC2mq9VAIAoslcbsc06h"
    "k";
constexpr char kP521JwkY[] =
    "AEXAGc0RYMUv90ab1pLXzBzzQZiyU_7DGAUmRHazGlHQ3IayveuLglEt6hIN47f5XhjfK3F5fd8aSypjnP9A38"
    "2r";
constexpr char kP521JwkD[] =
    "AKJIS-XGbqb7IdP5h7duw2ltiVazji1f0T9PG6Ykp0DQa3M6L-QWbedmK-HSjJxUjWnYuYovfQswi1Cjhpq8xn"
    "hE";
constexpr char kP521X[] =
    "AD2EBVC_AiBAGzeIh2GmPR_FpF0NifhVdi294AZJ0B4UKSHQNvY5hkToyDNfcvuakZfAQtpqvVQCAKLJXG7HNO"
    "oZ";

}  // namespace coffer::crypto::testing
