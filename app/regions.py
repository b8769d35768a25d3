"""China's provinces and their main prefecture-level cities, for forms, filters, normalisation and demo data."""

from __future__ import annotations

import unicodedata

# Province (full official name) → main cities (full names). Municipalities list their own name once.
PROVINCES: dict[str, list[str]] = {
    "北京市": ["北京市"],
    "天津市": ["天津市"],
    "上海市": ["上海市"],
    "重庆市": ["重庆市"],
    "河北省": ["石家庄市", "唐山市", "保定市", "邯郸市", "廊坊市", "秦皇岛市", "沧州市"],
    "山西省": ["太原市", "大同市", "长治市", "晋中市", "运城市"],
    "内蒙古自治区": ["呼和浩特市", "包头市", "鄂尔多斯市", "赤峰市"],
    "辽宁省": ["沈阳市", "大连市", "鞍山市", "锦州市"],
    "吉林省": ["长春市", "吉林市", "延边朝鲜族自治州"],
    "黑龙江省": ["哈尔滨市", "齐齐哈尔市", "大庆市", "牡丹江市"],
    "江苏省": ["南京市", "苏州市", "无锡市", "常州市", "南通市", "徐州市", "扬州市"],
    "浙江省": ["杭州市", "宁波市", "温州市", "绍兴市", "嘉兴市", "金华市", "台州市"],
    "安徽省": ["合肥市", "芜湖市", "蚌埠市", "安庆市", "阜阳市"],
    "福建省": ["福州市", "厦门市", "泉州市", "漳州市", "莆田市"],
    "江西省": ["南昌市", "赣州市", "九江市", "上饶市"],
    "山东省": ["济南市", "青岛市", "烟台市", "潍坊市", "临沂市", "淄博市", "济宁市"],
    "河南省": ["郑州市", "洛阳市", "开封市", "南阳市", "新乡市", "许昌市"],
    "湖北省": ["武汉市", "宜昌市", "襄阳市", "荆州市", "黄石市"],
    "湖南省": ["长沙市", "株洲市", "湘潭市", "衡阳市", "岳阳市", "常德市"],
    "广东省": ["广州市", "深圳市", "东莞市", "佛山市", "珠海市", "中山市", "惠州市", "汕头市"],
    "广西壮族自治区": ["南宁市", "柳州市", "桂林市", "北海市", "玉林市"],
    "海南省": ["海口市", "三亚市", "儋州市"],
    "四川省": ["成都市", "绵阳市", "德阳市", "宜宾市", "南充市", "乐山市", "泸州市"],
    "贵州省": ["贵阳市", "遵义市", "六盘水市", "安顺市", "毕节市"],
    "云南省": [
        "昆明市",
        "曲靖市",
        "玉溪市",
        "红河哈尼族彝族自治州",
        "大理白族自治州",
        "楚雄彝族自治州",
        "昭通市",
        "丽江市",
        "普洱市",
        "保山市",
        "文山壮族苗族自治州",
        "西双版纳傣族自治州",
    ],
    "西藏自治区": ["拉萨市", "日喀则市", "林芝市"],
    "陕西省": ["西安市", "宝鸡市", "咸阳市", "榆林市", "延安市"],
    "甘肃省": ["兰州市", "天水市", "酒泉市", "白银市"],
    "青海省": ["西宁市", "海东市"],
    "宁夏回族自治区": ["银川市", "石嘴山市", "吴忠市"],
    "新疆维吾尔自治区": ["乌鲁木齐市", "克拉玛依市", "喀什地区", "伊犁哈萨克自治州"],
    "香港特别行政区": ["香港"],
    "澳门特别行政区": ["澳门"],
    "台湾省": ["台北市", "高雄市", "台中市"],
}

_PEOPLES = (
    "哈尼族",
    "朝鲜族",
    "哈萨克",
    "蒙古族",
    "土家族",
    "布依族",
    "维吾尔",
    "傣族",
    "白族",
    "彝族",
    "壮族",
    "苗族",
    "藏族",
    "回族",
    "侗族",
    "瑶族",
    "黎族",
)
_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "地区", "省", "市")


def short_name(place: str) -> str:
    """'云南省' → '云南', '广西壮族自治区' → '广西', '昆明市' → '昆明', '大理白族自治州' → '大理'."""
    for suffix in _SUFFIXES:
        if place.endswith(suffix) and len(place) > len(suffix) + 1:
            place = place.removesuffix(suffix)
            break
    # Autonomous prefectures carry their peoples' names: 大理白族 → 大理, 红河哈尼族彝族 → 红河.
    stripped = True
    while stripped:
        stripped = False
        for people in _PEOPLES:
            if place.endswith(people) and len(place) > len(people) + 1:
                place = place.removesuffix(people)
                stripped = True
    return place


def _lookup() -> dict[str, str]:
    names = {}
    for province in PROVINCES:
        names[province] = province
        names[short_name(province)] = province
    return names


_PROVINCE_BY_NAME = _lookup()


def normalise_province(value: str) -> str:
    """A province as typed ('云南', '云南省', ' 云南省 ') → its full name; '' when empty; ValueError if unknown."""
    value = unicodedata.normalize("NFKC", value).strip()
    if not value:
        return ""
    if value in _PROVINCE_BY_NAME:
        return _PROVINCE_BY_NAME[value]
    raise ValueError(value)


def normalise_city(province: str, value: str) -> str:
    """A city as typed → its listed full name when the province lists it, else the cleaned text as typed."""
    value = unicodedata.normalize("NFKC", value).strip()
    if not value:
        return ""
    for city in PROVINCES.get(province, []):
        if value in (city, short_name(city)):
            return city
    return value


# Place names that may open a company name: longest first so '昆明市' is stripped before '昆明'.
PLACE_PREFIXES: tuple[str, ...] = tuple(
    sorted(
        {
            name
            for province, cities in PROVINCES.items()
            for place in (province, *cities)
            for name in (place, short_name(place))
        },
        key=len,
        reverse=True,
    )
)
